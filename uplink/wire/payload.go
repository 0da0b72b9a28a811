package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxPayload is the largest payload Decode accepts.
const MaxPayload = 64 << 10

// FieldError says which field of a payload is wrong and how.
type FieldError struct {
	Field   string // JSON path, e.g. "args.visibility"
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrMalformed wraps every error about a payload that is not JSON of the
// expected shape.
var ErrMalformed = errors.New("malformed payload")

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, a...)}
}

// decodeJSON unmarshals b into v (a pointer to a struct) after the checks
// every payload shares: size and valid UTF-8 JSON object.
func decodeJSON(what string, b []byte, v any, strict bool) error {
	if len(b) > MaxPayload {
		return fmt.Errorf("%s: %w: %d bytes, more than %d", what, ErrMalformed, len(b), MaxPayload)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("%s: %w: not UTF-8", what, ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("%s: %w: %w", what, ErrMalformed, fieldErr(te.Field, "is a JSON %s, want %s", te.Value, te.Type))
		}
		return fmt.Errorf("%s: %w: %v", what, ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: %w: data after the JSON object", what, ErrMalformed)
	}
	return nil
}

func checkVersion(v int) error {
	if v != Version {
		if v == 0 {
			return fieldErr("v", "is missing (want %d)", Version)
		}
		return fieldErr("v", "is %d, this side speaks %d", v, Version)
	}
	return nil
}

// MaxIDLen is the longest command or event id.
const MaxIDLen = 128

// validateToken checks an id-like string: 1..max printable ASCII characters
// without spaces.
func validateToken(field, s string, max int) error {
	if s == "" {
		return fieldErr(field, "is missing")
	}
	if len(s) > max {
		return fieldErr(field, "is longer than %d characters", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fieldErr(field, "%q: use printable ASCII without spaces", s)
		}
	}
	return nil
}

// validateText checks free text: at most max bytes, no control characters.
func validateText(field, s string, max int) error {
	if len(s) > max {
		return fieldErr(field, "is longer than %d bytes", max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return fieldErr(field, "contains a control character")
		}
	}
	return nil
}

// FormatTime writes t as the protocol does: RFC 3339, UTC, milliseconds.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// parseTime reads an RFC 3339 timestamp.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(field, "%q is not an RFC 3339 time such as 2026-03-01T09:00:00Z", s)
	}
	return t, nil
}

// decodeChecked reads b into a T with decodeJSON and checks it with
// validate; what names the payload in errors.
func decodeChecked[T any](what string, b []byte, strict bool, validate func(T) error) (T, error) {
	var v T
	if err := decodeJSON(what, b, &v, strict); err != nil {
		var zero T
		return zero, err
	}
	if err := validate(v); err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	return v, nil
}

package registry

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MosquittoIterations is the PBKDF2 iteration count of the mosquitto hashes
// the registry makes. mosquitto_passwd (2.0) uses 101; the file carries the
// count, so mosquitto checks a higher one too, at that cost per connection.
// The passwords are 192-bit random secrets (see BcryptCost).
const MosquittoIterations = 1000

// MosquittoHash returns password hashed the way mosquitto's password file
// holds it: "$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>", with a
// 12-byte salt and a 64-byte key.
func MosquittoHash(password string, iterations int) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("mosquitto hash: salt: %w", err)
	}
	return mosquittoHashSalt(password, salt, iterations)
}

func mosquittoHashSalt(password string, salt []byte, iterations int) (string, error) {
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		return "", fmt.Errorf("mosquitto hash: %w", err)
	}
	return "$7$" + strconv.Itoa(iterations) + "$" + base64.StdEncoding.EncodeToString(salt) + "$" +
		base64.StdEncoding.EncodeToString(key), nil
}

// CheckMosquittoHash reports whether password matches hash, a "$7$" line
// part as MosquittoHash writes it (and mosquitto_passwd does). A malformed
// hash is an error naming what is wrong.
func CheckMosquittoHash(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false, errors.New(`mosquitto hash: want "$7$<iterations>$<salt>$<hash>"`)
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false, fmt.Errorf("mosquitto hash: iterations %q: want a whole number from 1 to 10000000", parts[2])
	}
	salt, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(salt) == 0 {
		return false, fmt.Errorf("mosquitto hash: salt %q is not base64", parts[3])
	}
	want, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(want) != sha512.Size {
		return false, fmt.Errorf("mosquitto hash: key %q is not 64 bytes of base64", parts[4])
	}
	got, err := pbkdf2.Key(sha512.New, password, salt, iter, sha512.Size)
	if err != nil {
		return false, fmt.Errorf("mosquitto hash: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

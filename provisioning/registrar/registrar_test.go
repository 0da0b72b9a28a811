package registrar

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/enrollapi"
)

func TestHandlerRefusesBadRequests(t *testing.T) {
	dir := t.TempDir()
	authority, err := ca.LoadOrCreate(filepath.Join(dir, "ca"), "hub")
	if err != nil {
		t.Fatal(err)
	}
	db := &File{Path: filepath.Join(dir, "enroll.db")}
	claims, err := claim.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := New(Config{Validity: time.Hour}, authority, claims, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := reg.Handler()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		reason                   enrollapi.Reason
	}{
		{"garbage", "POST", enrollapi.EnrollPath, "{", 400, enrollapi.BadRequest},
		{"wrong v", "POST", enrollapi.EnrollPath, `{"v":2,"csr":"x"}`, 400, enrollapi.BadRequest},
		{"bad csr", "POST", enrollapi.EnrollPath, `{"v":1,"claim":"ccclaim_x","csr":"not a csr"}`, 400, enrollapi.BadRequest},
		{"renew bad csr", "POST", enrollapi.RenewPath, `{"v":1,"csr":""}`, 400, enrollapi.BadRequest},
		{"get", "GET", enrollapi.EnrollPath, "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, bytes.NewBufferString(tc.body)))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.reason == "" {
				return
			}
			var rf enrollapi.Refusal
			if err := json.Unmarshal(rec.Body.Bytes(), &rf); err != nil || rf.Reason != tc.reason || rf.Error == "" {
				t.Errorf("refusal %s: %+v %v", rec.Body, rf, err)
			}
		})
	}
	if _, _, err := reg.Device("nobody"); err != nil {
		t.Error(err)
	}
	if err := reg.Revoke("nobody"); err == nil {
		t.Error("revoked an unknown device")
	}
}

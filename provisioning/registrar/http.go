package registrar

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/classcap/classcap/provisioning/enrollapi"
)

// Handler serves the enrollment endpoints (enrollapi.EnrollPath and
// enrollapi.RenewPath). Mount it on a TLS listener whose certificate the
// CA issued (see ca.ServerCertificate).
func (r *Registrar) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+enrollapi.EnrollPath, func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, r.Enroll)
	})
	mux.HandleFunc("POST "+enrollapi.RenewPath, func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, r.Renew)
	})
	return mux
}

func (r *Registrar) serve(w http.ResponseWriter, req *http.Request, op func(enrollapi.Request) (enrollapi.Response, error)) {
	var body enrollapi.Request
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, enrollapi.MaxBody))
	if err := dec.Decode(&body); err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, enrollapi.BadRequest, "body: %v", err))
		return
	}
	if body.V != enrollapi.Version {
		writeRefusal(w, refuse(http.StatusBadRequest, enrollapi.BadRequest, "v %d, want %d", body.V, enrollapi.Version))
		return
	}
	resp, err := op(body)
	if err != nil {
		var rf *refusal
		if !errors.As(err, &rf) {
			r.log.Error("enrollment failed", "path", req.URL.Path, "remote", req.RemoteAddr, "err", err)
			rf = refuse(http.StatusInternalServerError, enrollapi.Internal, "the hub failed; retry later")
		} else {
			r.log.Warn("enrollment refused", "path", req.URL.Path, "remote", req.RemoteAddr,
				"reason", rf.body.Reason, "detail", rf.body.Error)
		}
		writeRefusal(w, rf)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func writeRefusal(w http.ResponseWriter, rf *refusal) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rf.status)
	_ = json.NewEncoder(w).Encode(rf.body)
}

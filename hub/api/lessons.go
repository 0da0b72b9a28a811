package api

import (
	"net/http"
	"path/filepath"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/hub/registry"
)

// LessonStore is the hub's store of uploaded lessons, as the API serves it.
type LessonStore interface {
	Dir(lessonID string) string
	Has(lessonID, name string) bool
	Status(lessonID string) (ingest.Status, error)
	// Visibility is the lesson's visibility from its lesson.json on the hub.
	Visibility(lessonID string) (string, error)
}

// ServeLessons adds the uploaded lessons: their upload state in the lesson
// list, and their files for playback at /lessons/<id>/index.m3u8 (with
// init.mp4 and the segments beside it) to callers with a token, for
// lessons their teacher made coaching or library (private ones are not
// served: teachers have no hub accounts yet). For browsers, the lesson is
// also one MP4 file at /lessons/<id>/lesson.mp4, with a bearer token or a
// media URL's ticket (see media.go).
func (a *API) ServeLessons(s LessonStore) {
	a.lessons = s
	a.mediaKey = newMediaKey()
	a.route("GET /lessons/{id}/{file}", registry.RoleCoach, a.lessonFile)
	a.route("POST /api/v1/lessons/{id}/media", registry.RoleCoach, a.mintMedia)
	a.mux.HandleFunc("GET /lessons/{id}/"+MediaName, a.lessonMedia)
}

var contentTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".mp4":  "video/mp4",
	".m4s":  "video/iso.segment",
	".json": "application/json",
}

func (a *API) lessonFile(w http.ResponseWriter, r *http.Request, _ caller) {
	id, name := r.PathValue("id"), r.PathValue("file")
	if !a.lessons.Has(id, name) {
		writeError(w, http.StatusNotFound, "not_found", "no file "+name+" of lesson "+id+" on the hub")
		return
	}
	// A lesson is shown only as its teacher allowed: its lesson.json (which
	// arrives last) must be on the hub and say coaching or library.
	vis, err := a.lessons.Visibility(id)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "lesson "+id+" is not complete on the hub yet")
		return
	}
	if vis != lesson.VisibilityCoaching && vis != lesson.VisibilityLibrary {
		writeError(w, http.StatusForbidden, "private", "lesson "+id+" is "+vis+": only its teacher may watch it")
		return
	}
	if ct, ok := contentTypes[filepath.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeFile(w, r, filepath.Join(a.lessons.Dir(id), name))
}

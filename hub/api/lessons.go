package api

import (
	"net/http"
	"path/filepath"

	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/hub/registry"
)

// LessonStore is the hub's store of uploaded lessons, as the API serves it.
type LessonStore interface {
	Dir(lessonID string) string
	Has(lessonID, name string) bool
	Status(lessonID string) (ingest.Status, error)
}

// ServeLessons adds the uploaded lessons: their upload state in the lesson
// list, and their files for playback at /lessons/<id>/index.m3u8 (with
// init.mp4 and the segments beside it) to callers with a token.
func (a *API) ServeLessons(s LessonStore) {
	a.lessons = s
	a.route("GET /lessons/{id}/{file}", registry.RoleCoach, a.lessonFile)
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
	if ct, ok := contentTypes[filepath.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeFile(w, r, filepath.Join(a.lessons.Dir(id), name))
}

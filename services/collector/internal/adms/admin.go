package adms

import (
	"encoding/json"
	"net/http"
	"strings"
)

// AdminHandler serves the operators' API (mount it on the ops server):
//
//	GET  /api/adms/devices                    every allowed device with its stamps, queue, results and information
//	POST /api/adms/devices/{serial}/commands  body {"command":"CHECK"}; answers {"id":N}
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/adms/devices", func(w http.ResponseWriter, r *http.Request) {
		views, err := s.Devices(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, views)
	})
	mux.HandleFunc("POST /api/adms/devices/{serial}/commands", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Command string `json:"command"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || strings.TrimSpace(req.Command) == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"command":"INFO"}`})
			return
		}
		id, err := s.Enqueue(r.Context(), r.PathValue("serial"), req.Command)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]int{"id": id})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

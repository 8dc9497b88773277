package testapp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NameHeader carries the instance name on every HTTP response, so a test can tell
// which pod answered.
const NameHeader = "X-Testapp-Name"

// maxBytes bounds /bytes, /stream and /drip so a typo cannot exhaust memory.
const maxBytes = 64 << 20

func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h http.HandlerFunc) {
		counter := a.requests.WithLabelValues(pattern)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			counter.Inc()
			h(w, r)
		})
	}
	route("GET /{$}", a.serveName)
	route("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	route("GET /ready", a.serveReady)
	route("POST /control/ready", a.setReady(true))
	route("POST /control/unready", a.setReady(false))
	route("POST /exit/{code}", a.serveExit)
	route("/status/{code}", serveStatus)
	route("/delay/{duration}", serveDelay)
	route("/bytes/{n}", serveBytes)
	route("/stream/{n}", serveStream)
	route("/drip", serveDrip)
	route("/headers", serveHeaders)
	route("POST /echo", serveEcho)
	route("POST /{$}", serveEcho)
	route("/ws", a.serveWebSocket)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(NameHeader, a.cfg.Name)
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			a.grpc.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *App) serveName(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintln(w, a.cfg.Name)
}

func (a *App) serveReady(w http.ResponseWriter, _ *http.Request) {
	if !a.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func (a *App) setReady(ready bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		a.ready.Store(ready)
		a.log.Info("readiness set", "ready", ready)
		w.WriteHeader(http.StatusNoContent)
	}
}

// serveExit answers, then ends the process with the requested code.
func (a *App) serveExit(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil {
		http.Error(w, "bad exit code", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	http.NewResponseController(w).Flush()
	a.log.Info("exiting on request", "code", code)
	go func() {
		time.Sleep(50 * time.Millisecond)
		a.exit(code)
	}()
}

func serveStatus(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 100 || code > 599 {
		http.Error(w, "bad status code", http.StatusBadRequest)
		return
	}
	w.WriteHeader(code)
	fmt.Fprintln(w, http.StatusText(code))
}

// serveDelay waits the given duration ("250ms", or bare seconds such as "2") before it
// answers; a client that goes away ends the wait.
func serveDelay(w http.ResponseWriter, r *http.Request) {
	d, err := parseDelay(r.PathValue("duration"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if sleep(r.Context(), d) != nil {
		return
	}
	fmt.Fprintf(w, "delayed %s\n", d)
}

func parseDelay(s string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

func parseCount(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= maxBytes
}

func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, ok := parseCount(r.PathValue("n"))
	if !ok {
		http.Error(w, "bad byte count", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	writePattern(w, n)
}

// writePattern writes n bytes of a repeating alphabet, so corruption is visible.
func writePattern(w io.Writer, n int) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz"
	buf := []byte(strings.Repeat(alphabet, 1+32*1024/len(alphabet)))
	for n > 0 {
		chunk := min(n, len(buf)-len(buf)%len(alphabet))
		if _, err := w.Write(buf[:chunk]); err != nil {
			return
		}
		n -= chunk
	}
}

// serveStream writes n JSON lines, flushing each, so the response is chunked and has
// no Content-Length.
func serveStream(w http.ResponseWriter, r *http.Request) {
	n, ok := parseCount(r.PathValue("n"))
	if !ok {
		http.Error(w, "bad line count", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for i := range n {
		if err := enc.Encode(map[string]any{"id": i, "path": r.URL.Path}); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// serveDrip sends numbytes bytes (default 10) spread evenly over duration (default
// 2s), after an initial delay (default 0), flushing each byte.
func serveDrip(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, ok := parseCount(cmpOr(q.Get("numbytes"), "10"))
	duration, err1 := parseDelay(cmpOr(q.Get("duration"), "2"))
	delay, err2 := parseDelay(cmpOr(q.Get("delay"), "0"))
	if !ok || err1 != nil || err2 != nil {
		http.Error(w, "bad drip parameters", http.StatusBadRequest)
		return
	}
	if sleep(r.Context(), delay) != nil {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	rc := http.NewResponseController(w)
	var pause time.Duration
	if n > 1 {
		pause = duration / time.Duration(n-1)
	}
	for i := range n {
		if i > 0 && sleep(r.Context(), pause) != nil {
			return
		}
		if _, err := w.Write([]byte{'*'}); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// serveHeaders echoes the request headers as JSON, with Host added as a header.
func serveHeaders(w http.ResponseWriter, r *http.Request) {
	h := r.Header.Clone()
	h.Set("Host", r.Host)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]http.Header{"headers": h})
}

// serveEcho answers with the request body and its content type.
func serveEcho(w http.ResponseWriter, r *http.Request) {
	// The echo writes while it still reads; HTTP/1 needs that allowed explicitly.
	_ = http.NewResponseController(w).EnableFullDuplex()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	io.Copy(w, io.LimitReader(r.Body, maxBytes))
}

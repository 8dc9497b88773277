package testapp

import (
	"errors"
	"net/http"

	"github.com/coder/websocket"
)

// serveWebSocket echoes every message back with its type until the client closes.
func (a *App) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxBytes)

	ctx := r.Context()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure ||
				errors.Is(err, ctx.Err()) {
				conn.Close(websocket.StatusNormalClosure, "")
			}
			return
		}
		if err := conn.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

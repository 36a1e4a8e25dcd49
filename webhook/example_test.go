package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/switchboard/switchboard/webhook"
)

// A Go backend checks each webhook's signature with Verify, then answers
// {"code": "OK"} to accept a connection.
func ExampleVerify() {
	secret := []byte("WEBHOOK_SECRET value")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev struct{ Connection, User string }
		_ = json.Unmarshal(body, &ev)
		if r.Method == http.MethodPost {
			fmt.Fprintf(w, `{"code":"OK","user":%q,"rooms":["#lobby"]}`, ev.User+"@example")
		}
	}))
	defer backend.Close()

	client, _ := webhook.New(webhook.Options{URL: backend.URL, Secret: secret})
	defer client.Close(context.Background())
	reply, err := client.Connect(context.Background(), webhook.ConnectEvent{Connection: "c1", User: "alice"})
	fmt.Println(reply.User, reply.Rooms, err)

	forger, _ := webhook.New(webhook.Options{URL: backend.URL, Secret: []byte("guess")})
	defer forger.Close(context.Background())
	_, err = forger.Connect(context.Background(), webhook.ConnectEvent{Connection: "c2", User: "mallory"})
	fmt.Println(err.(*webhook.Error).CloseReason())
	// Output:
	// alice@example [#lobby] <nil>
	// backend answered 401
}

// Command webhook-receiver is an example endpoint for Verity's webhooks:
// it verifies each delivery (verify.go, the check docs/deploying-a-site.md
// shows) and prints the event.
//
//	VERITY_WEBHOOK_SECRET=vws_... go run ./examples/webhook-receiver -listen 127.0.0.1:9000
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	secret := os.Getenv("VERITY_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set VERITY_WEBHOOK_SECRET to the secret `verity sites webhooks add` printed")
	}
	log.Fatal(http.ListenAndServe(*listen, handler(secret, os.Stdout)))
}

// handler answers 204 to a verified delivery, after printing its event
// to out, and 400 to anything else.
func handler(secret string, out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = verify(secret, r.Header, body, time.Now())
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(out, "%s %s %s\n", r.Header.Get("Verity-Event-Type"), r.Header.Get("Verity-Event-Id"), body)
		w.WriteHeader(http.StatusNoContent)
	})
}

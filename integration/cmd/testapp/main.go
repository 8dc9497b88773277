// Command testapp is the program the local test cluster runs for pods of the image
// elasti.test/testapp. It is configured through the environment; see package testapp.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr/funcr"

	"github.com/elasti-mesh/elasti/integration/testapp"
)

func main() {
	log := funcr.NewJSON(func(obj string) { fmt.Fprintln(os.Stderr, obj) }, funcr.Options{})

	cfg, err := testapp.ConfigFromEnv()
	if err != nil {
		log.Error(err, "invalid configuration")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if err := testapp.Run(ctx, cfg, log.WithValues("name", cfg.Name), nil); err != nil {
		log.Error(err, "test app failed")
		os.Exit(1)
	}
}

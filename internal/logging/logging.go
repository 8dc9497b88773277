// Package logging holds the logging flags both elasti programs take and builds
// their logger from them.
package logging

import (
	"flag"
	"fmt"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Flags are the logging flags. The zero value is ready for Bind.
type Flags struct {
	level string
	zap   zap.Options
}

// Bind registers --log-level and controller-runtime's --zap-* flags on fs.
func (f *Flags) Bind(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info",
		"log level: debug, info or error (--zap-log-level, when set, takes precedence)")
	f.zap.BindFlags(fs)
}

// Logger builds the logger the parsed flags describe, or says which flag is wrong.
func (f *Flags) Logger() (logr.Logger, error) {
	level, err := zapcore.ParseLevel(f.level)
	if err != nil {
		return logr.Logger{}, fmt.Errorf("invalid --log-level %q: %w", f.level, err)
	}
	if f.zap.Level == nil {
		f.zap.Level = level
	}
	return zap.New(zap.UseFlagOptions(&f.zap)), nil
}

package logging

import (
	"flag"
	"strings"
	"testing"
)

func TestLogger(t *testing.T) {
	tests := []struct {
		args      []string
		wantErr   string
		wantDebug bool
	}{
		{args: nil, wantDebug: false},
		{args: []string{"--log-level=debug"}, wantDebug: true},
		{args: []string{"--log-level=debug", "--zap-log-level=info"}, wantDebug: false},
		{args: []string{"--log-level=loud"}, wantErr: `invalid --log-level "loud"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var f Flags
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			f.Bind(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			log, err := f.Logger()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Logger() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := log.V(1).Enabled(); got != tt.wantDebug {
				t.Errorf("debug enabled = %v, want %v", got, tt.wantDebug)
			}
		})
	}
}

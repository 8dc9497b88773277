package scaler

import (
	"strings"
	"testing"
	"time"
)

// TestOptionsValidate: options that cannot work are refused with a message that
// names what to fix; the zero value is fine.
func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "zero value"},
		{name: "negative polling interval", opts: Options{PollingInterval: -time.Second},
			wantErr: "polling interval must not be negative"},
		{name: "query timeout above the polling interval",
			opts:    Options{PollingInterval: time.Second, QueryTimeout: 2 * time.Second},
			wantErr: "query timeout 2s must not exceed the polling interval 1s"},
		{name: "prometheus address without a scheme", opts: Options{PrometheusAddress: "prometheus:9090"},
			wantErr: `prometheus address "prometheus:9090" must be an http or https URL`},
		{name: "negative concurrency", opts: Options{MaxConcurrentQueries: -1},
			wantErr: "concurrency limits must not be negative"},
		{name: "negative activation rate", opts: Options{ActivationQPS: -5},
			wantErr: "activation API rate limits must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	d := Options{}.withDefaults()
	if d.ActivationQPS != DefaultActivationQPS || d.ActivationBurst != DefaultActivationBurst {
		t.Errorf("defaults: activation qps %v burst %d, want %v and %d",
			d.ActivationQPS, d.ActivationBurst, DefaultActivationQPS, DefaultActivationBurst)
	}
}

package scaler

import (
	"testing"
	"time"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

func TestZeroAllowed(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	nightly := &v1alpha1.EnabledPeriod{Schedule: "0 22 * * *", Duration: "8h"}
	tests := []struct {
		name    string
		period  *v1alpha1.EnabledPeriod
		now     time.Time
		want    bool
		wantErr bool
	}{
		{"no period", nil, at("2026-03-02T12:00:00Z"), true, false},
		{"window opening", nightly, at("2026-03-02T22:00:00Z"), true, false},
		{"inside after midnight", nightly, at("2026-03-03T05:59:59Z"), true, false},
		{"window closed", nightly, at("2026-03-03T06:00:00Z"), false, false},
		{"before opening", nightly, at("2026-03-02T21:59:00Z"), false, false},
		{"other time zone is converted", nightly, at("2026-03-02T23:30:00+01:00"), true, false},
		{"defaults: daily, 24h", &v1alpha1.EnabledPeriod{}, at("2026-03-02T13:00:00Z"), true, false},
		{"bad schedule", &v1alpha1.EnabledPeriod{Schedule: "99 * * * *"}, at("2026-03-02T13:00:00Z"), false, true},
		{"bad duration", &v1alpha1.EnabledPeriod{Duration: "soon"}, at("2026-03-02T13:00:00Z"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := zeroAllowed(tt.period, tt.now)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("zeroAllowed() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

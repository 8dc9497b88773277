package flagvalue

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{name: "unset", args: nil, want: nil},
		{name: "one", args: []string{"--ns=prod"}, want: []string{"prod"}},
		{name: "blanks and empty entries", args: []string{"--ns= prod, ,team-a,"}, want: []string{"prod", "team-a"}},
		{name: "repeated flag adds", args: []string{"--ns=a", "--ns=b"}, want: []string{"a", "b"}},
		{name: "not a namespace name", args: []string{"--ns=prod,Team_A"},
			wantErr: `invalid value "prod,Team_A" for flag -ns: "Team_A" is not a namespace name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var got []string
			Namespaces(fs, "ns", "namespaces", &got)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("namespaces = %q, want %q", got, tt.want)
			}
		})
	}
}

package main

import (
	"io"
	"testing"
)

func TestThePprofFlagSetsTheProfilesAddressAndIsOffByDefault(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flag leaves the profiles off", nil, "0"},
		{"an address turns them on there", []string{"--pprof-bind-address=127.0.0.1:6060"}, "127.0.0.1:6060"},
		{"0 turns them off", []string{"--pprof-bind-address=0"}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFlags(tt.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if f.PprofBindAddress != tt.want {
				t.Fatalf("PprofBindAddress %q, want %q", f.PprofBindAddress, tt.want)
			}
		})
	}
}

package source

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestAProxyAddressIsNeverEchoedInAnError(t *testing.T) {
	tests := []struct {
		name, address, says string
	}{
		{"an address without a scheme", "user:pass@proxy:3128", "address is not a URL with a scheme and a host"},
		{"an address whose credentials do not parse", "http://user:pa ss@proxy:3128", "address is not a URL such as http://proxy:3128"},
		{"an address with a port that is no number", "http://user:pass@proxy:port", "address is not a URL such as http://proxy:3128"},
		{"an address without a host", "http://user:pass@", "address is not a URL with a scheme and a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proxyURL(&corev1.Secret{Data: map[string][]byte{"address": []byte(tt.address)}})
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want one saying %q", err, tt.says)
			}
			if strings.Contains(err.Error(), "pass") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
	t.Run("a good address keeps its credentials for the proxy", func(t *testing.T) {
		u, err := proxyURL(&corev1.Secret{Data: map[string][]byte{"address": []byte("http://proxy:3128"), "username": []byte("u"), "password": []byte("p")}})
		if err != nil || u.Host != "proxy:3128" || u.User.String() != "u:p" {
			t.Fatalf("got %v, %v", u, err)
		}
	})
}

package v1beta1

// The route types below keep the JSON shape of Istio's networking API (as
// Flagger does), because Canary manifests written for Flagger use that shape
// for every provider. Routers translate them into their own objects.

// StringMatch matches a string exactly, by prefix, by suffix or by an RE2
// regular expression. At most one of them is set; none matches anything
// present.
//
// +kubebuilder:validation:XValidation:rule="(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.suffix) ? 1 : 0) + (has(self.regex) ? 1 : 0) <= 1",message="only one of exact, prefix, suffix and regex may be set"
type StringMatch struct {
	// Exact match.
	// +optional
	Exact string `json:"exact,omitempty"`

	// Prefix match.
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Suffix match.
	// +optional
	Suffix string `json:"suffix,omitempty"`

	// Regex is an RE2 regular expression.
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPMatchRequest selects requests by their attributes. All conditions of
// one match must hold, and a match needs one: an empty A/B match would
// send every request to the canary.
//
// +kubebuilder:validation:XValidation:rule="has(self.uri) || has(self.scheme) || has(self.method) || has(self.authority) || has(self.headers) || has(self.port) || has(self.sourceLabels) || has(self.gateways) || has(self.queryParams) || has(self.withoutHeaders) || has(self.sourceNamespace)",message="a match needs at least one condition (headers, uri, queryParams, ...): an empty match selects every request"
type HTTPMatchRequest struct {
	// Name of the match.
	// +optional
	Name string `json:"name,omitempty"`

	// URI match.
	// +optional
	URI *StringMatch `json:"uri,omitempty"`

	// Scheme match.
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`

	// Method match.
	// +optional
	Method *StringMatch `json:"method,omitempty"`

	// Authority match.
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`

	// Headers matches, by header name. The header cookie matches cookies.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Headers map[string]StringMatch `json:"headers,omitempty"`

	// Port the request is addressed to.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// SourceLabels select the calling workloads (Istio mesh only).
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`

	// Gateways where this match applies (Istio only).
	// +optional
	Gateways []string `json:"gateways,omitempty"`

	// QueryParams matches, by parameter name.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`

	// IgnoreURICase makes the URI match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`

	// WithoutHeaders selects requests whose headers do not match.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`

	// SourceNamespace selects the calling workloads' namespace (Istio mesh
	// only).
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// HTTPRewrite rewrites a request before it is forwarded.
type HTTPRewrite struct {
	// URI replaces the path, or the matched prefix.
	// +optional
	URI string `json:"uri,omitempty"`

	// Authority replaces the Host or :authority header.
	// +optional
	Authority string `json:"authority,omitempty"`

	// Type is how the Gateway API rewrites the path.
	// +optional
	// +kubebuilder:validation:Enum=ReplaceFullPath;ReplacePrefixMatch
	Type string `json:"type,omitempty"`
}

// HTTPRetry is a retry policy.
type HTTPRetry struct {
	// Attempts is the number of retries.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Attempts int32 `json:"attempts,omitempty"`

	// PerTryTimeout is the timeout of each attempt, as a duration.
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`

	// RetryOn lists the conditions that cause a retry, comma-separated.
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// Headers are operations on request and response headers.
type Headers struct {
	// Request header operations.
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`

	// Response header operations.
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations set, add or remove headers.
type HeaderOperations struct {
	// Set overwrites headers.
	// +optional
	Set map[string]string `json:"set,omitempty"`

	// Add appends headers.
	// +optional
	Add map[string]string `json:"add,omitempty"`

	// Remove deletes headers.
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is a Cross-Origin Resource Sharing policy.
type CorsPolicy struct {
	// AllowOrigin lists exact origins.
	//
	// Deprecated: use allowOrigins.
	// +optional
	AllowOrigin []string `json:"allowOrigin,omitempty"`

	// AllowOrigins match the allowed origins.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`

	// AllowMethods lists the allowed methods.
	// +optional
	AllowMethods []string `json:"allowMethods,omitempty"`

	// AllowHeaders lists the allowed request headers.
	// +optional
	AllowHeaders []string `json:"allowHeaders,omitempty"`

	// ExposeHeaders lists the headers browsers may read.
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`

	// MaxAge is how long a preflight answer may be cached, as a duration.
	// +optional
	MaxAge string `json:"maxAge,omitempty"`

	// AllowCredentials allows credentialed requests.
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}

// TrafficPolicy is the Istio DestinationRule traffic policy of the primary
// and canary destinations.
type TrafficPolicy struct {
	// LoadBalancer settings.
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`

	// ConnectionPool settings.
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`

	// OutlierDetection settings.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// TLS settings for connections to the destination.
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// LoadBalancerSettings choose the load balancing algorithm.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.simple) && has(self.consistentHash))",message="simple and consistentHash are mutually exclusive"
type LoadBalancerSettings struct {
	// Simple is a standard algorithm.
	// +optional
	// +kubebuilder:validation:Enum=UNSPECIFIED;ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	Simple string `json:"simple,omitempty"`

	// ConsistentHash gives soft session affinity.
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`

	// LocalityLbSetting is locality-weighted load balancing.
	// +optional
	LocalityLbSetting *LocalityLoadBalancerSetting `json:"localityLbSetting,omitempty"`

	// WarmupDurationSecs ramps up traffic to new endpoints, as a duration.
	// +optional
	WarmupDurationSecs string `json:"warmupDurationSecs,omitempty"`
}

// ConsistentHashLB hashes one request attribute to pick an endpoint.
//
// +kubebuilder:validation:XValidation:rule="(has(self.httpHeaderName) ? 1 : 0) + (has(self.httpCookie) ? 1 : 0) + (has(self.useSourceIp) ? 1 : 0) + (has(self.httpQueryParameterName) ? 1 : 0) == 1",message="exactly one of httpHeaderName, httpCookie, useSourceIp and httpQueryParameterName must be set"
type ConsistentHashLB struct {
	// HTTPHeaderName hashes a header.
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`

	// HTTPCookie hashes a cookie, creating it if needed.
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`

	// UseSourceIP hashes the source address.
	// +optional
	UseSourceIP bool `json:"useSourceIp,omitempty"`

	// HTTPQueryParameterName hashes a query parameter.
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`

	// MinimumRingSize of the hash ring.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinimumRingSize int64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie describes the cookie of a consistent hash.
type HTTPCookie struct {
	// Name of the cookie.
	Name string `json:"name"`

	// Path of the cookie.
	// +optional
	Path string `json:"path,omitempty"`

	// TTL of the cookie, as a duration.
	// +optional
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting weighs or fails over traffic by locality.
type LocalityLoadBalancerSetting struct {
	// Distribute weighs traffic between localities.
	// +optional
	Distribute []LocalityDistribute `json:"distribute,omitempty"`

	// Failover lists the region to fail over to from each region.
	// +optional
	Failover []LocalityFailover `json:"failover,omitempty"`

	// Enabled turns locality load balancing on or off.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityDistribute weighs traffic from one locality.
type LocalityDistribute struct {
	// From is the originating locality, '/' separated.
	// +optional
	From string `json:"from,omitempty"`

	// To maps upstream localities to weights.
	// +optional
	To map[string]int32 `json:"to,omitempty"`
}

// LocalityFailover names the region to fail over to.
type LocalityFailover struct {
	// From is the originating region.
	// +optional
	From string `json:"from,omitempty"`

	// To is the failover region.
	// +optional
	To string `json:"to,omitempty"`
}

// ConnectionPoolSettings limit connections to the destination.
type ConnectionPoolSettings struct {
	// TCP settings.
	// +optional
	TCP *TCPSettings `json:"tcp,omitempty"`

	// HTTP settings.
	// +optional
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings limit TCP connections.
type TCPSettings struct {
	// MaxConnections to the destination.
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`

	// ConnectTimeout of a TCP connection, as a duration.
	// +optional
	ConnectTimeout string `json:"connectTimeout,omitempty"`
}

// HTTPSettings limit HTTP requests.
type HTTPSettings struct {
	// HTTP1MaxPendingRequests queued for a connection.
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`

	// HTTP2MaxRequests to the destination.
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`

	// MaxRequestsPerConnection to the destination.
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`

	// MaxRetries outstanding to the destination.
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`

	// IdleTimeout of upstream connections, as a duration.
	// +optional
	IdleTimeout string `json:"idleTimeout,omitempty"`

	// H2UpgradePolicy says whether HTTP/1.1 connections are upgraded to
	// HTTP/2.
	// +optional
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
}

// OutlierDetection ejects failing endpoints from the load balancing pool.
type OutlierDetection struct {
	// ConsecutiveErrors before ejection.
	//
	// Deprecated: use consecutive5xxErrors or consecutiveGatewayErrors.
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`

	// ConsecutiveGatewayErrors (502, 503, 504) before ejection.
	// +optional
	ConsecutiveGatewayErrors int32 `json:"consecutiveGatewayErrors,omitempty"`

	// Consecutive5xxErrors before ejection.
	// +optional
	Consecutive5xxErrors int32 `json:"consecutive5xxErrors,omitempty"`

	// ConsecutiveLocalOriginFailures before ejection, when
	// splitExternalLocalOriginErrors is set.
	// +optional
	ConsecutiveLocalOriginFailures int32 `json:"consecutiveLocalOriginFailures,omitempty"`

	// SplitExternalLocalOriginErrors tells local failures from external
	// ones.
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`

	// Interval between ejection sweeps, as a duration.
	// +optional
	Interval string `json:"interval,omitempty"`

	// BaseEjectionTime is the shortest ejection, as a duration.
	// +optional
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`

	// MaxEjectionPercent of the pool that may be ejected.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`

	// MinHealthPercent below which outlier detection is off.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
}

// ClientTLSSettings configure TLS to the destination.
type ClientTLSSettings struct {
	// Mode of TLS.
	// +optional
	// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL;ISTIO_MUTUAL
	Mode string `json:"mode,omitempty"`

	// ClientCertificate file path, for MUTUAL.
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`

	// PrivateKey file path, for MUTUAL.
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`

	// CaCertificates file path.
	// +optional
	CaCertificates string `json:"caCertificates,omitempty"`

	// CredentialName of the Secret that holds the client certificates.
	// +optional
	CredentialName string `json:"credentialName,omitempty"`

	// SubjectAltNames accepted in the server's certificate.
	// +optional
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`

	// Sni presented during the TLS handshake.
	// +optional
	Sni string `json:"sni,omitempty"`

	// InsecureSkipVerify skips verification of the server's certificate.
	// +optional
	InsecureSkipVerify *bool `json:"insecureSkipVerify,omitempty"`
}

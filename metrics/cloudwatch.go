package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
)

// Secret keys of the CloudWatch provider: static AWS credentials.
const (
	cloudWatchAccessKeyID     = "aws_access_key_id"
	cloudWatchSecretAccessKey = "aws_secret_access_key"
	cloudWatchSessionToken    = "aws_session_token"
)

const (
	// cloudWatchWindowFactor: like Flagger, a query reads ten metric
	// intervals back. CloudWatch publishes datapoints late and per period,
	// so a window of one interval is often empty; the latest datapoint of
	// the longer window is the value.
	cloudWatchWindowFactor = 10
	// cloudWatchMaxDatapoints is Flagger's page size; the newest
	// datapoints come first, so one page holds the value.
	cloudWatchMaxDatapoints = 20
	// cloudWatchMaxAttempts bounds the SDK's retries of throttling, 5xx
	// and network errors.
	cloudWatchMaxAttempts = 3
)

// cloudWatchAuthCode tells the AWS error codes of refused credentials,
// some of which come with HTTP 400 rather than 403.
func cloudWatchAuthCode(code string) bool {
	switch code {
	case "AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
		"IncompleteSignature", "InvalidClientTokenId", "MissingAuthenticationToken",
		"SignatureDoesNotMatch", "UnrecognizedClientException":
		return true
	}
	return false
}

// CloudWatch runs GetMetricData queries against Amazon CloudWatch. The
// query is a JSON array of MetricDataQuery, as in Flagger; the value is
// the latest datapoint of the one query that returns data.
//
// Credentials are the Secret's aws_access_key_id, aws_secret_access_key
// and optional aws_session_token, or else the AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN environment variables. IAM
// roles (IRSA, EKS Pod Identity, instance profiles), which Flagger gets
// from the SDK's default chain, are not supported: that chain lives in
// modules this project does not depend on.
type CloudWatch struct {
	client *cloudwatch.Client
	cfg    Config
}

// NewCloudWatch builds a CloudWatch provider for cfg.Region. cfg.Address,
// when set, replaces the regional endpoint (a VPC endpoint, a test server).
func NewCloudWatch(cfg Config) (Provider, error) {
	return newCloudWatch(cfg, os.LookupEnv)
}

// newCloudWatch is NewCloudWatch with the environment and client options
// given, for tests.
func newCloudWatch(cfg Config, lookupEnv func(string) (string, bool), optFns ...func(*cloudwatch.Options)) (*CloudWatch, error) {
	if cfg.Region == "" {
		return nil, errors.New("region is required")
	}
	creds, err := cloudWatchCredentials(cfg.Secret, lookupEnv)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	opts := cloudwatch.Options{
		Region:           cfg.Region,
		Credentials:      aws.NewCredentialsCache(creds),
		HTTPClient:       hc,
		RetryMaxAttempts: cloudWatchMaxAttempts,
	}
	if cfg.Address != "" {
		opts.BaseEndpoint = aws.String(cfg.Address)
	}
	return &CloudWatch{client: cloudwatch.New(opts, optFns...), cfg: cfg}, nil
}

// cloudWatchCredentials takes static credentials from the Secret or, when
// it holds none, from the environment.
func cloudWatchCredentials(secret map[string][]byte, lookupEnv func(string) (string, bool)) (aws.CredentialsProvider, error) {
	creds := aws.Credentials{
		AccessKeyID:     string(secret[cloudWatchAccessKeyID]),
		SecretAccessKey: string(secret[cloudWatchSecretAccessKey]),
		SessionToken:    string(secret[cloudWatchSessionToken]),
		Source:          "secret",
	}
	idName, keyName := "secret key "+cloudWatchAccessKeyID, "secret key "+cloudWatchSecretAccessKey
	if creds.AccessKeyID == "" && creds.SecretAccessKey == "" && creds.SessionToken == "" {
		creds.AccessKeyID, _ = lookupEnv("AWS_ACCESS_KEY_ID")
		creds.SecretAccessKey, _ = lookupEnv("AWS_SECRET_ACCESS_KEY")
		creds.SessionToken, _ = lookupEnv("AWS_SESSION_TOKEN")
		creds.Source = "environment"
		if creds.AccessKeyID == "" && creds.SecretAccessKey == "" {
			return nil, fmt.Errorf("secret key %s is missing and AWS_ACCESS_KEY_ID is not set (IAM roles are not supported)", cloudWatchAccessKeyID)
		}
		idName, keyName = "environment variable AWS_ACCESS_KEY_ID", "environment variable AWS_SECRET_ACCESS_KEY"
	}
	switch {
	case creds.AccessKeyID == "":
		return nil, fmt.Errorf("%s is missing", idName)
	case creds.SecretAccessKey == "":
		return nil, fmt.Errorf("%s is missing", keyName)
	}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return creds, nil
	}), nil
}

// Query runs GetMetricData over the ten metric intervals that end now.
func (p *CloudWatch) Query(ctx context.Context, q Query) (float64, error) {
	queries, err := parseCloudWatchQuery(q.Text)
	if err != nil {
		return 0, err
	}
	end := p.cfg.now()
	start := end.Add(-cloudWatchWindowFactor * cloudWatchWindow(q.Window))
	out, err := p.client.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime:         &start,
		EndTime:           &end,
		MetricDataQueries: queries,
		MaxDatapoints:     aws.Int32(cloudWatchMaxDatapoints),
		ScanBy:            types.ScanByTimestampDescending,
	})
	if err != nil {
		return 0, fmt.Errorf("query cloudwatch: %w", cloudWatchError(err))
	}
	return cloudWatchValue(out.MetricDataResults)
}

// Healthy sends GetMetricData without queries, as Flagger does: CloudWatch
// checks the signature and the cloudwatch:GetMetricData permission before
// it rejects the empty request with 400, so a 400 means reachable and
// authorized, and costs no metric reads.
func (p *CloudWatch) Healthy(ctx context.Context) error {
	end := p.cfg.now()
	start := end.Add(-time.Minute)
	_, err := p.client.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime:         &start,
		EndTime:           &end,
		MetricDataQueries: []types.MetricDataQuery{},
	})
	if err == nil {
		return nil
	}
	err = cloudWatchError(err)
	var resp interface{ HTTPStatusCode() int }
	if !errors.Is(err, ErrAuth) && errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusBadRequest {
		return nil
	}
	return fmt.Errorf("probe cloudwatch: %w", err)
}

// cloudWatchWindow is the metric interval, or a minute when none is set,
// so that the range is never empty.
func cloudWatchWindow(w time.Duration) time.Duration {
	if w <= 0 {
		return time.Minute
	}
	return w
}

// parseCloudWatchQuery reads the query: a JSON array of MetricDataQuery
// with the API's field names (Id, Expression, MetricStat, ReturnData, ...).
// Unknown fields are errors, so that a misspelt field fails here rather
// than as a puzzling answer.
func parseCloudWatchQuery(text string) ([]types.MetricDataQuery, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var queries []types.MetricDataQuery
	if err := dec.Decode(&queries); err != nil {
		return nil, fmt.Errorf("cloudwatch query is not a JSON array of MetricDataQuery: %w", err)
	}
	if dec.More() {
		return nil, errors.New("cloudwatch query has data after its JSON array")
	}
	if len(queries) == 0 {
		return nil, errors.New("cloudwatch query has no MetricDataQuery")
	}
	return queries, nil
}

// cloudWatchValue takes the latest value of the one result. Queries with
// ReturnData false (the inputs of an expression) return no result.
func cloudWatchValue(results []types.MetricDataResult) (float64, error) {
	switch len(results) {
	case 0:
		return 0, fmt.Errorf("%w: no MetricDataResult", ErrNoValues)
	case 1:
	default:
		return 0, fmt.Errorf("%w: %d MetricDataResults; set ReturnData false on all queries but one", ErrMultipleValues, len(results))
	}
	r := results[0]
	if len(r.Values) == 0 {
		if r.StatusCode == types.StatusCodeForbidden {
			return 0, fmt.Errorf("%w: result %s is Forbidden: %s", ErrAuth, aws.ToString(r.Id), cloudWatchMessages(r.Messages))
		}
		return 0, fmt.Errorf("%w: result %s has no datapoints (status %s)", ErrNoValues, aws.ToString(r.Id), r.StatusCode)
	}
	latest := 0
	if len(r.Timestamps) == len(r.Values) {
		for i, ts := range r.Timestamps {
			if ts.After(r.Timestamps[latest]) {
				latest = i
			}
		}
	}
	v := r.Values[latest]
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: the value is %v", ErrNoValues, v)
	}
	return v, nil
}

// cloudWatchMessages joins a result's messages for an error.
func cloudWatchMessages(ms []types.MessageData) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", aws.ToString(m.Code), aws.ToString(m.Value))
	}
	return b.String()
}

// cloudWatchError classifies the SDK's errors: refused credentials by
// their AWS error code or HTTP status, 5xx, throttling and network errors
// as unreachable.
func cloudWatchError(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && cloudWatchAuthCode(apiErr.ErrorCode()) {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	// A request that was never answered has a response error of status 0
	// around the transport's error.
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) && resp.HTTPStatusCode() > 0 {
		return withStatus(resp.HTTPStatusCode(), err)
	}
	return classify(0, err)
}

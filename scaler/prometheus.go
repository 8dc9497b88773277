package scaler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Why a trigger could not be evaluated; used as the result label of the trigger
// error metric, so the set is small and fixed.
const (
	queryErrRequest  = "request"
	queryErrStatus   = "status"
	queryErrDecode   = "decode"
	queryErrEmpty    = "empty"
	queryErrMultiple = "multiple"
	queryErrValue    = "value"
	queryErrUptime   = "uptime"
	queryErrConfig   = "config"
)

// queryError is a Prometheus query that gave no usable value.
type queryError struct {
	kind string
	msg  string
	err  error
}

func (e *queryError) Error() string { return e.msg }
func (e *queryError) Unwrap() error { return e.err }

// errorKind returns the metric label for err.
func errorKind(err error) string {
	var qe *queryError
	if errors.As(err, &qe) {
		return qe.kind
	}
	return queryErrRequest
}

// promResponse is the part of Prometheus's /api/v1/query answer the scaler reads.
type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// promSample is one element of a vector result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// prometheus runs instant queries. Its zero value is not usable; it is safe for
// concurrent use.
type prometheus struct {
	http *http.Client
	// sem bounds the queries in flight across every caller.
	sem chan struct{}
}

func newPrometheus(httpClient *http.Client, maxInFlight int) *prometheus {
	return &prometheus{http: httpClient, sem: make(chan struct{}, maxInFlight)}
}

// query runs an instant query and returns its values: one per series of a vector
// result, or the one value of a scalar result.
func (p *prometheus) query(
	ctx context.Context,
	server, promql string,
	headers map[string]string,
) ([]float64, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, &queryError{kind: queryErrRequest, err: ctx.Err(),
			msg: fmt.Sprintf("failed to query %q: %v", server, ctx.Err())}
	}
	defer func() { <-p.sem }()

	body, err := p.fetch(ctx, server, promql, headers)
	if err != nil {
		return nil, err
	}
	return decodeValues(body)
}

func (p *prometheus) fetch(
	ctx context.Context,
	server, promql string,
	headers map[string]string,
) ([]byte, error) {
	u := strings.TrimSuffix(server, "/") + "/api/v1/query?" + url.Values{"query": {promql}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &queryError{kind: queryErrConfig, err: err,
			msg: fmt.Sprintf("failed to build a query for %q: %v", server, err)}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, &queryError{kind: queryErrRequest, err: err,
			msg: fmt.Sprintf("failed to query Prometheus at %q: %v", server, err)}
	}
	defer resp.Body.Close()

	// Answers are a few hundred bytes; a megabyte is plenty and bounds memory.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &queryError{kind: queryErrRequest, err: err,
			msg: fmt.Sprintf("failed to read the answer of %q: %v", server, err)}
	}
	if resp.StatusCode != http.StatusOK {
		var pr promResponse
		_ = json.Unmarshal(body, &pr)
		return nil, &queryError{kind: queryErrStatus, msg: fmt.Sprintf(
			"Prometheus at %q answered %d: %s", server, resp.StatusCode, cmpOr(pr.Error, http.StatusText(resp.StatusCode)))}
	}
	return body, nil
}

func decodeValues(body []byte) ([]float64, error) {
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, &queryError{kind: queryErrDecode, err: err,
			msg: fmt.Sprintf("failed to decode the Prometheus answer: %v", err)}
	}
	if pr.Status != "success" {
		return nil, &queryError{kind: queryErrStatus,
			msg: fmt.Sprintf("Prometheus query failed: %s: %s", pr.ErrorType, pr.Error)}
	}
	switch pr.Data.ResultType {
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(pr.Data.Result, &pair); err != nil {
			return nil, &queryError{kind: queryErrDecode, err: err,
				msg: fmt.Sprintf("failed to decode a scalar result: %v", err)}
		}
		v, err := sampleValue(pair)
		if err != nil {
			return nil, err
		}
		return []float64{v}, nil
	case "vector":
		var samples []promSample
		if err := json.Unmarshal(pr.Data.Result, &samples); err != nil {
			return nil, &queryError{kind: queryErrDecode, err: err,
				msg: fmt.Sprintf("failed to decode a vector result: %v", err)}
		}
		out := make([]float64, 0, len(samples))
		for _, s := range samples {
			v, err := sampleValue(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, &queryError{kind: queryErrValue, msg: fmt.Sprintf(
		"the query returned a %s, want an instant vector or a scalar", cmpOr(pr.Data.ResultType, "result of no type"))}
}

// sampleValue parses a [time, "value"] pair.
func sampleValue(pair [2]any) (float64, error) {
	s, ok := pair[1].(string)
	if !ok {
		return 0, &queryError{kind: queryErrDecode, msg: "the sample has no value"}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, &queryError{kind: queryErrDecode, err: err,
			msg: fmt.Sprintf("failed to parse sample value %q: %v", s, err)}
	}
	return v, nil
}

// single returns the one finite value of a query's result, or why there is none.
func single(values []float64) (float64, error) {
	switch {
	case len(values) == 0:
		return 0, &queryError{kind: queryErrEmpty,
			msg: "the query returned no sample; end it with \"or vector(0)\" if no traffic means zero"}
	case len(values) > 1:
		return 0, &queryError{kind: queryErrMultiple, msg: fmt.Sprintf(
			"the query returned %d series, want exactly one: aggregate it, for example with sum()", len(values))}
	case math.IsNaN(values[0]) || math.IsInf(values[0], 0):
		return 0, &queryError{kind: queryErrValue,
			msg: fmt.Sprintf("the query returned %v, want a finite number", values[0])}
	}
	return values[0], nil
}

func cmpOr(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

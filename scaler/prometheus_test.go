package scaler

import (
	"errors"
	"math"
	"testing"
)

func TestDecodeAndSingle(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     float64
		wantKind string
	}{
		{"one sample", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.5"]}]}}`, 0.5, ""},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}`, 2, ""},
		{"empty", `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, queryErrEmpty},
		{"two series", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}`, 0, queryErrMultiple},
		{"NaN", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"NaN"]}]}}`, 0, queryErrValue},
		{"+Inf", `{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"+Inf"]}]}}`, 0, queryErrValue},
		{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, queryErrValue},
		{"error status", `{"status":"error","errorType":"bad_data","error":"parse error"}`, 0, queryErrStatus},
		{"not json", `<html>`, 0, queryErrDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values, err := decodeValues([]byte(tt.body))
			var got float64
			if err == nil {
				got, err = single(values)
			}
			var qe *queryError
			gotKind := ""
			if errors.As(err, &qe) {
				gotKind = qe.kind
			} else if err != nil {
				gotKind = "untyped"
			}
			if gotKind != tt.wantKind {
				t.Fatalf("error kind = %q (%v), want %q", gotKind, err, tt.wantKind)
			}
			if err == nil && (got != tt.want || math.IsNaN(got)) {
				t.Errorf("value = %v, want %v", got, tt.want)
			}
		})
	}
}

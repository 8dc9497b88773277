package istio

import (
	"encoding/json"
	"fmt"
)

// jsonField returns the string field name of the JSON object doc.
func jsonField(doc, name string) (string, error) {
	var fields map[string]any
	if err := json.Unmarshal([]byte(doc), &fields); err != nil {
		return "", fmt.Errorf("failed to decode %q: %w", doc, err)
	}
	v, _ := fields[name].(string)
	if v == "" {
		return "", fmt.Errorf("no %q in %q", name, doc)
	}
	return v, nil
}

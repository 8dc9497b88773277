package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// prometheusConfig scrapes every target listed in the targets folder each second.
// file_sd picks up new files without a reload.
const prometheusConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: elasti
    file_sd_configs:
      - files: [%q]
        refresh_interval: 1s
`

var jobName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]*$`)

func (c *Cluster) startPrometheus(ctx context.Context) error {
	if !fileExists(c.opts.PrometheusPath) {
		return fmt.Errorf("prometheus not found at %q: install Debian's prometheus package", c.opts.PrometheusPath)
	}
	dir := filepath.Join(c.Dir, "prometheus")
	c.targetsDir = filepath.Join(dir, "targets")
	if err := os.MkdirAll(c.targetsDir, 0o755); err != nil {
		return fmt.Errorf("failed to create prometheus folder: %w", err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	body := fmt.Sprintf(prometheusConfig, filepath.Join(c.targetsDir, "*.json"))
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		return fmt.Errorf("failed to write prometheus config: %w", err)
	}

	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	p, err := c.startProcess("prometheus", c.opts.PrometheusPath,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	if err != nil {
		return err
	}
	c.PrometheusURL = "http://" + addr
	err = waitHTTP(ctx, http.DefaultClient, c.PrometheusURL+"/-/ready", p, func(body string) bool {
		return strings.Contains(body, "Ready")
	})
	if err != nil {
		return fmt.Errorf("prometheus did not become ready: %w", err)
	}
	return nil
}

// AddScrapeTarget makes Prometheus scrape http://address/metrics every second with the
// given job label. Address must be a loopback host:port (map pod IPs with Loopback
// first). Adding a job again replaces its targets. Prometheus notices within about a
// second. It is safe for concurrent use with distinct jobs.
func (c *Cluster) AddScrapeTarget(job string, addresses ...string) error {
	if !jobName.MatchString(job) {
		return fmt.Errorf("invalid job name %q", job)
	}
	groups := []map[string]any{{
		"targets": addresses,
		"labels":  map[string]string{"job": job},
	}}
	data, err := json.Marshal(groups)
	if err != nil {
		return fmt.Errorf("failed to encode targets: %w", err)
	}

	// Write then rename, so Prometheus never reads half a file.
	tmp := filepath.Join(c.targetsDir, "."+job+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("failed to write targets of job %q: %w", job, err)
	}
	if err := os.Rename(tmp, filepath.Join(c.targetsDir, job+".json")); err != nil {
		return fmt.Errorf("failed to publish targets of job %q: %w", job, err)
	}
	return nil
}

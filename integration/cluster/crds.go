package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// installCRDs creates every CustomResourceDefinition in files and waits until the API
// server serves them all.
func (c *Cluster) installCRDs(ctx context.Context, files []string) error {
	var names []string
	for _, path := range files {
		crds, err := readCRDs(path)
		if err != nil {
			return err
		}
		for _, crd := range crds {
			err := c.Client.Create(ctx, crd)
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("failed to create CRD %q from %q: %w", crd.Name, path, err)
			}
			names = append(names, crd.Name)
		}
	}

	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true,
			func(ctx context.Context) (bool, error) {
				var crd apiextensionsv1.CustomResourceDefinition
				if err := c.Client.Get(ctx, types.NamespacedName{Name: name}, &crd); err != nil {
					return false, client.IgnoreNotFound(err)
				}
				for _, cond := range crd.Status.Conditions {
					if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
						return true, nil
					}
				}
				return false, nil
			})
		if err != nil {
			return fmt.Errorf("CRD %q was not established: %w", name, err)
		}
	}
	return nil
}

// readCRDs decodes every CustomResourceDefinition in a multi-document YAML file,
// skipping documents of other kinds.
func readCRDs(path string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open CRD file: %w", err)
	}
	defer f.Close()

	reader := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var out []*apiextensionsv1.CustomResourceDefinition
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read %q: %w", path, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := utilyaml.Unmarshal(doc, crd); err != nil {
			return nil, fmt.Errorf("failed to decode a document of %q: %w", path, err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Name == "" {
			continue
		}
		out = append(out, crd)
	}
}

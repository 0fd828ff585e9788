// Knative Serving's own admission logic for a Service, without a cluster:
// SetDefaults then Validate, as Serving's webhook runs them on create.
// Reads one serving.knative.dev/v1 Service (YAML or JSON) on stdin; prints the
// errors and exits 1 when Knative would refuse it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	var service servingv1.Service
	if err := yaml.UnmarshalStrict(data, &service); err != nil {
		fail("not a serving.knative.dev/v1 Service: %v", err)
	}
	ctx := apis.WithinCreate(context.Background())
	service.SetDefaults(ctx)
	if errs := service.Validate(ctx); errs != nil {
		fail("Knative Serving refuses the Service: %v", errs)
	}
	fmt.Println("valid")
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

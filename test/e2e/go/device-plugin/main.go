// device-plugin advertises fake devices to the kubelet for the extended resources the e2e NADs
// name, so that a pod nri injected is scheduled against real allocatable counts and the kubelet
// really allocates devices to it. Each allocation puts the device IDs into the container's
// environment (NRI_DEVICES_<RESOURCE>), which the suite reads with kubectl exec.
//
//	device-plugin -resource example.com/foo=4 -resource intel.com/sriov=8
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

type resourceFlags []string

func (r *resourceFlags) String() string     { return strings.Join(*r, ",") }
func (r *resourceFlags) Set(v string) error { *r = append(*r, v); return nil }

// plugin serves one extended resource on its own socket, as the kubelet expects.
type plugin struct {
	pluginapi.UnimplementedDevicePluginServer
	resource string
	devices  []*pluginapi.Device
}

func (p *plugin) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{}, nil
}

// ListAndWatch sends the device list once and then holds the stream open: the devices never change.
func (p *plugin) ListAndWatch(_ *pluginapi.Empty, stream pluginapi.DevicePlugin_ListAndWatchServer) error {
	if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: p.devices}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (p *plugin) Allocate(_ context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	res := &pluginapi.AllocateResponse{}
	for _, c := range req.ContainerRequests {
		log.Printf("allocate %s: %v", p.resource, c.DevicesIds)
		res.ContainerResponses = append(res.ContainerResponses, &pluginapi.ContainerAllocateResponse{
			Envs: map[string]string{envName(p.resource): strings.Join(c.DevicesIds, ",")},
		})
	}
	return res, nil
}

func (p *plugin) GetPreferredAllocation(context.Context, *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	return &pluginapi.PreferredAllocationResponse{}, nil
}

func (p *plugin) PreStartContainer(context.Context, *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	return &pluginapi.PreStartContainerResponse{}, nil
}

// envName turns example.com/foo into NRI_DEVICES_EXAMPLE_COM_FOO.
func envName(resource string) string {
	return "NRI_DEVICES_" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, resource)
}

func (p *plugin) socketName() string {
	return "nri-e2e-" + strings.NewReplacer("/", "-", ".", "-").Replace(p.resource) + ".sock"
}

// serve listens on the plugin's socket and registers it with the kubelet.
func (p *plugin) serve(dir string) (*grpc.Server, error) {
	path := filepath.Join(dir, p.socketName())
	_ = os.Remove(path)
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	server := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(server, p)
	go func() { _ = server.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "kubelet.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		server.Stop()
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version: pluginapi.Version, Endpoint: p.socketName(), ResourceName: p.resource,
	})
	if err != nil {
		server.Stop()
		return nil, fmt.Errorf("register %s: %w", p.resource, err)
	}
	log.Printf("registered %s with %d devices", p.resource, len(p.devices))
	return server, nil
}

func parse(spec string) (*plugin, error) {
	name, count, ok := strings.Cut(spec, "=")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n < 1 || !strings.Contains(name, "/") {
		return nil, fmt.Errorf("-resource %q: want <domain>/<name>=<count>", spec)
	}
	p := &plugin{resource: name}
	for i := 0; i < n; i++ {
		p.devices = append(p.devices, &pluginapi.Device{ID: fmt.Sprintf("%s-%d", filepath.Base(name), i), Health: pluginapi.Healthy})
	}
	return p, nil
}

func main() {
	var resources resourceFlags
	dir := flag.String("dir", pluginapi.DevicePluginPath, "the kubelet's device-plugin directory")
	flag.Var(&resources, "resource", "<domain>/<name>=<count>, repeatable")
	flag.Parse()
	var plugins []*plugin
	for _, spec := range resources {
		p, err := parse(spec)
		if err != nil {
			log.Fatal(err)
		}
		plugins = append(plugins, p)
	}
	if len(plugins) == 0 {
		log.Fatal("at least one -resource is required")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// The kubelet removes every plugin socket when it restarts: register again when ours disappears.
	for {
		var servers []*grpc.Server
		for _, p := range plugins {
			s, err := p.serve(*dir)
			for err != nil {
				log.Printf("%v; retrying", err)
				select {
				case <-stop:
					return
				case <-time.After(time.Second):
				}
				s, err = p.serve(*dir)
			}
			servers = append(servers, s)
		}
		for watching := true; watching; {
			select {
			case <-stop:
				for _, s := range servers {
					s.Stop()
				}
				return
			case <-time.After(time.Second):
			}
			if _, err := os.Stat(filepath.Join(*dir, plugins[0].socketName())); err != nil {
				log.Print("plugin socket removed (kubelet restarted): registering again")
				watching = false
			}
		}
		for _, s := range servers {
			s.Stop()
		}
	}
}

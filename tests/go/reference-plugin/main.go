// The reference Go plugin for `make bench`: the smallest secrets engine
// the official Vault SDK makes that stores static credentials and reads
// them back, served the way current SDK plugins are (ServeMultiplex), so
// our plugin's cold start, read latency and memory are compared with a Go
// plugin's on the same host with the same client. Test-only.
package main

import (
	"context"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

func main() {
	err := plugin.ServeMultiplex(&plugin.ServeOpts{BackendFactoryFunc: factory})
	if err != nil {
		hclog.New(&hclog.LoggerOptions{}).Error("plugin shutting down", "error", err)
		os.Exit(1)
	}
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		Help:        "Reference plugin: static roles stored as given, read back by static-creds.",
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{"role/"},
		},
		Paths: []*framework.Path{
			{
				Pattern: "static-roles/" + framework.GenericNameRegex("name"),
				Fields: map[string]*framework.FieldSchema{
					"name":     {Type: framework.TypeString, Description: "Name of the role."},
					"username": {Type: framework.TypeString, Description: "The account's user name."},
					"password": {Type: framework.TypeString, Description: "The account's password."},
				},
				ExistenceCheck: roleExists,
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.CreateOperation: &framework.PathOperation{Callback: writeRole},
					logical.UpdateOperation: &framework.PathOperation{Callback: writeRole},
				},
			},
			{
				Pattern: "static-creds/" + framework.GenericNameRegex("name"),
				Fields: map[string]*framework.FieldSchema{
					"name": {Type: framework.TypeString, Description: "Name of the role."},
				},
				Operations: map[logical.Operation]framework.OperationHandler{
					logical.ReadOperation: &framework.PathOperation{Callback: readCreds},
				},
			},
		},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

type role struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func key(d *framework.FieldData) string {
	return "role/" + d.Get("name").(string)
}

func roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	entry, err := req.Storage.Get(ctx, key(d))
	return entry != nil, err
}

func writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	entry, err := logical.StorageEntryJSON(key(d), role{
		Username: d.Get("username").(string),
		Password: d.Get("password").(string),
	})
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Put(ctx, entry)
}

func readCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	entry, err := req.Storage.Get(ctx, key(d))
	if err != nil || entry == nil {
		return nil, err
	}
	var r role
	if err := entry.DecodeJSON(&r); err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]interface{}{
		"username": r.Username,
		"password": r.Password,
	}}, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// mirror is where the app mirrors its counter: the demo key/value db
// (kvMirror) or PostgreSQL (pgStore).
type mirror interface {
	// get returns the value of key; a missing key is not an error.
	get(ctx context.Context, key string) (string, error)
	put(ctx context.Context, key, value string) error
}

// row is one row of the app's rows table.
type row struct {
	ID    int64  `json:"id"`
	Value string `json:"value"`
}

// rowStore is a mirror that also keeps rows (only PostgreSQL does).
type rowStore interface {
	addRow(ctx context.Context, value string) (row, error)
	rows(ctx context.Context) ([]row, error)
}

// kvMirror talks to `demo-app db` over HTTP with the db's password; with
// no URL it mirrors nothing.
type kvMirror struct {
	url, password string
	client        *http.Client
}

func newKVMirror(url, password string) *kvMirror {
	return &kvMirror{url: url, password: password, client: &http.Client{Timeout: 2 * time.Second}}
}

func (m *kvMirror) get(ctx context.Context, key string) (string, error) {
	return m.call(ctx, http.MethodGet, key, "")
}

func (m *kvMirror) put(ctx context.Context, key, value string) error {
	_, err := m.call(ctx, http.MethodPut, key, value)
	return err
}

func (m *kvMirror) call(ctx context.Context, method, key, body string) (string, error) {
	if m.url == "" {
		return "", nil
	}
	req, err := http.NewRequestWithContext(ctx, method, m.url+"/kv/"+key, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+m.password)
	resp, err := m.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return "", fmt.Errorf("db: %s", resp.Status)
	}
	return string(b), nil
}

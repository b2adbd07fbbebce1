package cmdb

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// restPath is where iTop serves its REST/JSON API below its root URL.
const restPath = "/webservices/rest.php"

// Per-object codes of a core/delete answer (iTop's RestDelete) that mean the
// object was dealt with: deleted as asked, deleted automatically with it, or
// had an optional external key reset.
const (
	deleteOK         = 0
	deleteAuto       = 2
	deleteAutoUpdate = 5
)

// Client speaks iTop's REST/JSON protocol: one form-encoded POST per
// operation, json_data holding the operation. iTop answers HTTP 200 even
// for failures, so the outcome is always read from the JSON "code". The
// Activities use it, and the worker asks it for a sign of life (Check) at
// start-up, which is no activity.
type Client struct {
	endpoint string
	user     string
	password string
	basic    bool
	http     *http.Client
	log      *slog.Logger
}

// NewClient validates cfg and prepares the iTop client. It does no network
// I/O: the worker calls Check to learn whether iTop answers.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c.log = log
	return c, nil
}

// Check makes one cheap read (no Organization has id 0) proving that iTop
// answers, supports the API version and accepts the credentials with read
// access to organizations.
func (c *Client) Check(ctx context.Context) error {
	if _, err := c.get(ctx, ClassOrganization, 0, "id"); err != nil {
		return activityError(fmt.Errorf("check iTop: %w", err))
	}
	return nil
}

func newClient(cfg Config) (*Client, error) {
	pw, err := cfg.password()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envPasswordFile, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in, for test instances
	}
	return &Client{
		endpoint: strings.TrimRight(cfg.URL, "/") + restPath + "?version=" + url.QueryEscape(cfg.Version),
		user:     cfg.User,
		password: pw,
		basic:    cfg.Auth == AuthBasic,
		http:     &http.Client{Timeout: cfg.Timeout, Transport: tr},
	}, nil
}

// object is one iTop object as an answer reports it.
type object struct {
	Class  string
	ID     string
	Fields map[string]string
}

// response is RestResult / RestResultWithObjects.
type response struct {
	Code    int                     `json:"code"`
	Message jsonText                `json:"message"`
	Objects map[string]objectResult `json:"objects"`
}

// objectResult is iTop's ObjectResult, one entry of "objects", keyed
// "Class::id".
type objectResult struct {
	Code    int                 `json:"code"`
	Message jsonText            `json:"message"`
	Class   string              `json:"class"`
	Key     jsonText            `json:"key"` // absent before API version 1.1
	Fields  map[string]jsonText `json:"fields"`
}

// jsonText reads any JSON value as text: iTop reports ids and most values
// as strings but some attributes (and some versions) as numbers or null.
type jsonText string

func (t *jsonText) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = jsonText(s)
	default:
		*t = jsonText(b)
	}
	return nil
}

func (r objectResult) object(mapKey string) object {
	class, id, _ := strings.Cut(mapKey, "::")
	if r.Class != "" {
		class = r.Class
	}
	if r.Key != "" {
		id = string(r.Key)
	}
	o := object{Class: class, ID: id, Fields: map[string]string{}}
	for k, v := range r.Fields {
		o.Fields[k] = string(v)
	}
	return o
}

// objects returns the answer's objects by increasing id, so that "the
// oldest" is well defined when iTop holds duplicates.
func (r *response) objects() []object {
	var out []object
	for k, v := range r.Objects {
		out = append(out, v.object(k))
	}
	slices.SortFunc(out, func(a, b object) int {
		x, _ := strconv.Atoi(a.ID)
		y, _ := strconv.Atoi(b.ID)
		return x - y
	})
	return out
}

// call posts one operation and returns the decoded answer. Transport
// failures, non-200 statuses and non-JSON bodies are plain errors (a
// retry may succeed once iTop or its proxy is back); a non-zero code is
// an *Error.
func (c *Client) call(ctx context.Context, op map[string]any) (*response, error) {
	verb, _ := op["operation"].(string)
	class, _ := op["class"].(string)
	js, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", verb, err)
	}
	form := url.Values{"json_data": {string(js)}}
	if !c.basic {
		form.Set("auth_user", c.user)
		form.Set("auth_pwd", c.password)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("iTop %s: %w", verb, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.basic {
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("iTop %s: %w", verb, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("iTop %s: read answer: %w", verb, err)
	}
	if resp.StatusCode != http.StatusOK {
		// iTop itself always answers 200: this comes from a web server or
		// proxy in front of it (outage, maintenance, overload).
		return nil, fmt.Errorf("iTop %s: HTTP %s from %s: %s", verb, resp.Status, c.endpoint, c.excerpt(body))
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("iTop %s: answer is not iTop's JSON (Content-Type %q; is %s the iTop root?): %s",
			verb, resp.Header.Get("Content-Type"), envURL, c.excerpt(body))
	}
	if r.Code != 0 {
		return &r, &Error{Operation: verb, Class: class, Code: r.Code, Message: string(r.Message)}
	}
	return &r, nil
}

// excerpt is the start of an unexpected body, on one line, for errors. The
// password is masked, plain and form-encoded, before the body is cut (a
// cut could otherwise leave part of it), in case a front end echoes the
// request.
func (c *Client) excerpt(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if c.password != "" {
		for _, form := range []string{c.password, url.QueryEscape(c.password), url.PathEscape(c.password)} {
			s = strings.ReplaceAll(s, form, "***")
		}
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// checkObjects fails on any per-object code other than the accepted ones.
func checkObjects(verb string, r *response, ok ...int) error {
	for k, o := range r.Objects {
		if !slices.Contains(ok, o.Code) {
			return &Error{Operation: verb, Class: o.Class, Object: k, Code: o.Code, Message: string(o.Message)}
		}
	}
	return nil
}

// get runs core/get. key is an id, an OQL query or a criteria map; fields
// is output_fields. No match is an empty result, not an error.
func (c *Client) get(ctx context.Context, class string, key any, fields string) ([]object, error) {
	r, err := c.call(ctx, map[string]any{"operation": "core/get", "class": class, "key": key, "output_fields": fields})
	if err != nil {
		return nil, err
	}
	if err := checkObjects("core/get", r, 0); err != nil {
		return nil, err
	}
	return r.objects(), nil
}

// one is the single object a create or update reports.
func one(verb string, r *response) (object, error) {
	if err := checkObjects(verb, r, 0); err != nil {
		return object{}, err
	}
	objs := r.objects()
	if len(objs) != 1 {
		return object{}, fmt.Errorf("iTop %s: answer reports %d objects, want 1", verb, len(objs))
	}
	return objs[0], nil
}

// create runs core/create and returns the new object with fields.
func (c *Client) create(ctx context.Context, class string, values map[string]any, fields, comment string) (object, error) {
	r, err := c.call(ctx, map[string]any{"operation": "core/create", "comment": comment, "class": class, "fields": values, "output_fields": fields})
	if err != nil {
		return object{}, err
	}
	return one("core/create", r)
}

// update runs core/update on one object, by id.
func (c *Client) update(ctx context.Context, class, id string, values map[string]any, fields, comment string) (object, error) {
	r, err := c.call(ctx, map[string]any{"operation": "core/update", "comment": comment, "class": class, "key": idKey(id), "fields": values, "output_fields": fields})
	if err != nil {
		return object{}, err
	}
	return one("core/update", r)
}

// delete runs core/delete on one object, by id. An object already gone is
// success ("Deleted: 0").
func (c *Client) delete(ctx context.Context, class, id, comment string) error {
	r, err := c.call(ctx, map[string]any{"operation": "core/delete", "comment": comment, "class": class, "key": idKey(id), "simulate": false})
	if err != nil {
		return err
	}
	return checkObjects("core/delete", r, deleteOK, deleteAuto, deleteAutoUpdate)
}

// deleteBlockers simulates deleting one object and lists the objects iTop
// says stand in the way (dependants that must be deleted explicitly). A
// real delete would fail with a bare code 100 ("Found issue(s)"), which
// cannot be told from a transient internal error; the simulation reports
// the plan object by object.
func (c *Client) deleteBlockers(ctx context.Context, class, id, comment string) ([]string, error) {
	r, err := c.call(ctx, map[string]any{"operation": "core/delete", "comment": comment, "class": class, "key": idKey(id), "simulate": true})
	if err != nil && (r == nil || len(r.Objects) == 0) {
		return nil, err
	}
	var blockers []string
	for k, o := range r.Objects {
		if !slices.Contains([]int{deleteOK, deleteAuto, deleteAutoUpdate}, o.Code) {
			blockers = append(blockers, k+": "+string(o.Message))
		}
	}
	slices.Sort(blockers)
	if err != nil && len(blockers) == 0 {
		return nil, err
	}
	return blockers, nil
}

// idKey sends an id as a JSON number, which iTop reads as "the object with
// this id" (a string would be read as OQL unless numeric).
func idKey(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	return id
}

// oqlQuote quotes a string literal for OQL.
func oqlQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

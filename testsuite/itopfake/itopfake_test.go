package itopfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	testUser = "rest"
	testPwd  = "s3cret"
)

type answer struct {
	status int
	raw    string
	body   map[string]any
}

func post(t *testing.T, s *Server, form url.Values, basic bool) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+RestPath+"?version=1.3", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(testUser, testPwd)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(b)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &a.body); err != nil {
			t.Fatalf("answer is not JSON: %v: %s", err, b)
		}
	}
	return a
}

// op posts one operation with form credentials.
func op(t *testing.T, s *Server, jsonData string) answer {
	t.Helper()
	return post(t, s, url.Values{"auth_user": {testUser}, "auth_pwd": {testPwd}, "json_data": {jsonData}}, false)
}

func wantCode(t *testing.T, a answer, code int, msg string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 (iTop always answers 200): %s", a.status, a.raw)
	}
	if got := int(a.body["code"].(float64)); got != code {
		t.Fatalf("code %d, want %d: %s", got, code, a.raw)
	}
	if msg != "" && !strings.Contains(a.body["message"].(string), msg) {
		t.Fatalf("message %q does not contain %q", a.body["message"], msg)
	}
}

func objects(t *testing.T, a answer) map[string]any {
	t.Helper()
	o, _ := a.body["objects"].(map[string]any)
	return o
}

func TestProtocolErrorsAreHTTP200WithCode(t *testing.T) {
	s := New(t, testUser, testPwd)
	cases := []struct {
		name  string
		form  url.Values
		basic bool
		code  int
		msg   string
	}{
		{"missing json_data", url.Values{"auth_user": {testUser}, "auth_pwd": {testPwd}}, false, 3, "Error: Missing parameter 'json_data'"},
		{"wrong password", url.Values{"auth_user": {testUser}, "auth_pwd": {"nope"}, "json_data": {`{"operation":"list_operations"}`}}, false, 1, "Error: Invalid login"},
		{"unknown user", url.Values{"auth_user": {"admin"}, "auth_pwd": {testPwd}, "json_data": {`{"operation":"list_operations"}`}}, false, 1, "Error: Invalid login"},
		{"no credentials", url.Values{"json_data": {`{"operation":"list_operations"}`}}, false, 5, "auth_user"},
		{"no password", url.Values{"auth_user": {testUser}, "json_data": {`{"operation":"list_operations"}`}}, false, 6, "auth_pwd"},
		{"invalid json", url.Values{"json_data": {`{"operation":`}}, true, 4, "not a valid JSON structure"},
		{"missing operation", url.Values{"json_data": {`{"class":"Organization"}`}}, true, 100, "Missing parameter 'operation'"},
		{"unknown operation", url.Values{"json_data": {`{"operation":"core/frobnicate"}`}}, true, 11, "Unknown verb 'core/frobnicate' in version '1.3'"},
		{"basic auth ok", url.Values{"json_data": {`{"operation":"list_operations"}`}}, true, 0, "Operations: 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, post(t, s, c.form, c.basic), c.code, c.msg)
		})
	}

	// Credentials are checked before anything else, version before json_data.
	req, _ := http.NewRequest(http.MethodPost, s.URL+RestPath, strings.NewReader("auth_user=rest&auth_pwd=s3cret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("decode the answer: %v", err)
	}
	if resp.StatusCode != 200 || body["code"].(float64) != 2 {
		t.Fatalf("missing version: HTTP %d %v, want 200 code 2", resp.StatusCode, body)
	}
	a := post(t, s, url.Values{"auth_user": {testUser}, "auth_pwd": {testPwd}, "version": {"9.9"}, "json_data": {`{"operation":"list_operations"}`}}, false)
	// The query string says 1.3: as in PHP's $_REQUEST, the body wins.
	wantCode(t, a, 10, "There is no service available for version '9.9'")
}

func TestUnsupportedVersion(t *testing.T) {
	s := New(t, testUser, testPwd)
	resp, err := http.PostForm(s.URL+RestPath+"?version=2.0", url.Values{"auth_user": {testUser}, "auth_pwd": {testPwd}, "json_data": {`{"operation":"list_operations"}`}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode the answer: %v", err)
	}
	if body["code"].(float64) != 10 || body["message"] != "Error: There is no service available for version '2.0'" {
		t.Fatalf("got %v", body)
	}
}

func TestGetNothingMatchedAnswersObjectsNull(t *testing.T) {
	s := New(t, testUser, testPwd)
	a := op(t, s, `{"operation":"core/get","class":"Organization","key":"SELECT Organization WHERE code = 'acme'","output_fields":"id,name,code"}`)
	wantCode(t, a, 0, "Found: 0")
	if !strings.Contains(a.raw, `"objects":null`) {
		t.Fatalf(`want "objects":null, got %s`, a.raw)
	}
	a = op(t, s, `{"operation":"core/get","class":"Organization","key":42}`)
	wantCode(t, a, 0, "Found: 0")
	if a.body["objects"] != nil {
		t.Fatalf("objects = %v, want null", a.body["objects"])
	}
}

func TestCreateGetUpdateShapes(t *testing.T) {
	s := New(t, testUser, testPwd)
	a := op(t, s, `{"operation":"core/create","comment":"test","class":"Organization","fields":{"name":"Acme","code":"acme"},"output_fields":"id"}`)
	wantCode(t, a, 0, "")
	if a.body["message"] != nil {
		t.Fatalf("create message = %v, want null", a.body["message"])
	}
	org := objects(t, a)["Organization::1"].(map[string]any)
	if org["key"] != "1" || org["class"] != "Organization" || org["message"] != "created" || org["code"].(float64) != 0 {
		t.Fatalf("object result %v", org)
	}
	if f := org["fields"].(map[string]any); len(f) != 1 || f["id"] != "1" {
		t.Fatalf("fields %v, want only id as a string", f)
	}

	a = op(t, s, `{"operation":"core/create","comment":"test","class":"ApplicationSolution","fields":{"name":"app","org_id":{"code":"acme"}},"output_fields":"*"}`)
	wantCode(t, a, 0, "")
	f := objects(t, a)["ApplicationSolution::1"].(map[string]any)["fields"].(map[string]any)
	if f["org_id"] != "1" || f["org_id_friendlyname"] != "Acme" || f["organization_name"] != "Acme" || f["status"] != "active" || f["business_criticity"] != "low" {
		t.Fatalf("fields %v", f)
	}
	if _, ok := f["id"]; ok {
		t.Fatalf(`output_fields "*" lists attributes, not id: %v`, f)
	}

	// Key forms: OQL (case-insensitive like MySQL), id, criteria.
	for _, key := range []string{`"SELECT ApplicationSolution WHERE name = 'APP' AND org_id = 1"`, `1`, `"1"`, `{"name":"app","org_id":1}`} {
		a = op(t, s, `{"operation":"core/get","class":"ApplicationSolution","key":`+key+`,"output_fields":"id,name"}`)
		wantCode(t, a, 0, "Found: 1")
		if objects(t, a)["ApplicationSolution::1"] == nil {
			t.Fatalf("key %s: %s", key, a.raw)
		}
	}

	a = op(t, s, `{"operation":"core/update","comment":"test","class":"ApplicationSolution","key":1,"fields":{"status":"inactive"},"output_fields":"status"}`)
	wantCode(t, a, 0, "")
	if got := objects(t, a)["ApplicationSolution::1"].(map[string]any); got["message"] != "updated" || got["fields"].(map[string]any)["status"] != "inactive" {
		t.Fatalf("update %s", a.raw)
	}
	if o, _ := s.Object("ApplicationSolution", "1"); o.Fields["status"] != "inactive" {
		t.Fatalf("stored %v", o)
	}

	a = op(t, s, `{"operation":"core/update","comment":"test","class":"ApplicationSolution","key":7,"fields":{"status":"inactive"}}`)
	wantCode(t, a, 100, "Error: Invalid object ApplicationSolution::7")
}

func TestRefusesWhatITopRefuses(t *testing.T) {
	s := New(t, testUser, testPwd)
	org := s.Seed("Organization", map[string]any{"name": "Acme", "code": "acme"})
	cases := []struct{ name, json, msg string }{
		{"enum value", `{"operation":"core/create","comment":"c","class":"ApplicationSolution","fields":{"name":"a","org_id":` + org + `,"status":"production"}}`, "Unexpected value for attribute 'status': Value not allowed [production]"},
		{"mandatory org", `{"operation":"core/create","comment":"c","class":"ApplicationSolution","fields":{"name":"a"}}`, "Unexpected value for attribute 'org_id': Null not allowed"},
		{"date format", `{"operation":"core/create","comment":"c","class":"ApplicationSolution","fields":{"name":"a","org_id":1,"move2production":"01/02/2025"}}`, `Error: move2production: Wrong format for date attribute move2production, expecting "Y-m-d" and got "01/02/2025"`},
		{"unknown attribute", `{"operation":"core/create","comment":"c","class":"Organization","fields":{"name":"a","colour":"red"}}`, "Error: colour: Unknown attribute"},
		{"unknown class", `{"operation":"core/get","class":"OtherSoftware","key":1}`, "is not a valid class"},
		{"missing comment", `{"operation":"core/create","class":"Organization","fields":{"name":"a"}}`, "Missing parameter 'comment'"},
		{"bad output field", `{"operation":"core/get","class":"Organization","key":1,"output_fields":"id,colour"}`, "output_fields: invalid attribute code 'colour'"},
		{"missing target", `{"operation":"core/create","comment":"c","class":"ApplicationSolution","fields":{"name":"a","org_id":99}}`, "org_id: Invalid object Organization::99"},
		{"unsupported OQL", `{"operation":"core/get","class":"Organization","key":"SELECT Organization WHERE code LIKE 'ac%'"}`, "itopfake only supports OQL"},
		{"OQL without WHERE", `{"operation":"core/get","class":"Organization","key":"SELECT Organization"}`, "itopfake only supports OQL"},
		{"OQL alias", `{"operation":"core/get","class":"Organization","key":"SELECT Organization AS o WHERE o.code = 'acme'"}`, "itopfake only supports OQL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := op(t, s, c.json)
			wantCode(t, a, 100, c.msg)
			if _, ok := a.body["objects"]; ok {
				t.Fatalf("an exception answer has no objects: %s", a.raw)
			}
		})
	}
	if n := len(s.Objects("ApplicationSolution")); n != 0 {
		t.Fatalf("%d ApplicationSolution stored after refusals", n)
	}
}

func TestDeleteFollowsTheDeletionPlan(t *testing.T) {
	s := New(t, testUser, testPwd)
	org := s.Seed("Organization", map[string]any{"name": "Acme", "code": "acme"})
	child := s.Seed("Organization", map[string]any{"name": "Acme EU", "parent_id": org})
	s.Seed("ApplicationSolution", map[string]any{"name": "app", "org_id": org})

	// A dependant through a mandatory DEL_MANUAL key blocks a real delete
	// (DeleteException, code 100) and nothing is deleted.
	a := op(t, s, `{"operation":"core/delete","comment":"c","class":"Organization","key":`+org+`}`)
	wantCode(t, a, 100, "Error: Found issue(s): target_class = Organization, target_id = 1, issues = ApplicationSolution::1 Must be deleted manually")
	if len(s.Objects("Organization")) != 2 || len(s.Objects("ApplicationSolution")) != 1 {
		t.Fatal("a refused delete deleted something")
	}

	// Simulated, the plan is reported object by object.
	a = op(t, s, `{"operation":"core/delete","comment":"c","class":"Organization","key":`+org+`,"simulate":true}`)
	wantCode(t, a, 100, "SIMULATING: Some issues have been encountered")
	objs := objects(t, a)
	if o := objs["Organization::1"].(map[string]any); o["code"].(float64) != 0 {
		t.Fatalf("requested object: %v", o)
	}
	if o := objs["ApplicationSolution::1"].(map[string]any); o["code"].(float64) != 4 || !strings.HasPrefix(o["message"].(string), "Must be deleted explicitely") {
		t.Fatalf("DEL_MANUAL dependant: %v", o)
	}
	if o := objs["Organization::2"].(map[string]any); o["code"].(float64) != 5 || o["message"] != "Reset external keys: Parent" {
		t.Fatalf("optional key dependant: %v", o)
	}

	// Children first, then the organization; the child org's parent is reset.
	a = op(t, s, `{"operation":"core/delete","comment":"c","class":"ApplicationSolution","key":{"name":"app"}}`)
	wantCode(t, a, 0, "Deleted: 1")
	if o := objects(t, a)["ApplicationSolution::1"].(map[string]any); o["code"].(float64) != 0 || o["fields"].(map[string]any)["friendlyname"] != "app" {
		t.Fatalf("deleted object: %v", o)
	}
	a = op(t, s, `{"operation":"core/delete","comment":"c","class":"Organization","key":"SELECT Organization WHERE code = 'acme'","simulate":false}`)
	wantCode(t, a, 0, "Deleted: 1 plus (for DB integrity) 1")
	if o, ok := s.Object("Organization", child); !ok || o.Fields["parent_id"] != "0" {
		t.Fatalf("child organization: %v %v", o, ok)
	}
	if _, ok := s.Object("Organization", org); ok {
		t.Fatal("organization still there")
	}

	// Nothing matched: nothing deleted, objects null.
	a = op(t, s, `{"operation":"core/delete","comment":"c","class":"Organization","key":"SELECT Organization WHERE code = 'acme'"}`)
	wantCode(t, a, 0, "Deleted: 0")
	if a.body["objects"] != nil {
		t.Fatalf("objects = %v", a.body["objects"])
	}
}

func TestVersion10HasNoKey(t *testing.T) {
	s := New(t, testUser, testPwd)
	s.Seed("Organization", map[string]any{"name": "Acme"})
	resp, err := http.PostForm(s.URL+RestPath+"?version=1.0", url.Values{"auth_user": {testUser}, "auth_pwd": {testPwd}, "json_data": {`{"operation":"core/get","class":"Organization","key":1}`}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), `"key"`) || !strings.Contains(string(b), `"Organization::1"`) {
		t.Fatalf("version 1.0 answer: %s", b)
	}
}

func TestInjectedFailures(t *testing.T) {
	s := New(t, testUser, testPwd)
	s.SetDown(true)
	if a := op(t, s, `{"operation":"list_operations"}`); a.status != http.StatusServiceUnavailable {
		t.Fatalf("down: HTTP %d", a.status)
	}
	s.SetDown(false)
	s.FailNext(100, "Error: Deadlock found when trying to get lock")
	wantCode(t, op(t, s, `{"operation":"list_operations"}`), 100, "Deadlock")
	wantCode(t, op(t, s, `{"operation":"list_operations"}`), 0, "")

	s.SetDropConnections(true)
	if resp, err := http.PostForm(s.URL+RestPath+"?version=1.3", url.Values{"json_data": {"{}"}}); err == nil {
		resp.Body.Close()
		t.Fatal("dropped connection answered")
	}
	s.SetDropConnections(false)

	resp, err := http.Get(s.URL + "/pages/UI.php")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("outside the API: HTTP %d", resp.StatusCode)
	}
	calls := s.Calls()
	if len(calls) != 2 || calls[0].Code != 100 || calls[1].Auth != "form" || calls[1].Operation != "list_operations" {
		t.Fatalf("calls %+v", calls)
	}
}

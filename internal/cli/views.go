package cli

import "time"

// The fields of the API's answers the tables show. The CLI decodes only
// these (the rest passes through -o json untouched); views_test.go checks
// them against the workflows' own types, so a renamed field fails a test.

type progressView struct {
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Step  string `json:"step"`
}

// tenantItem is one tenant of GET /v1/tenants (visibility).
type tenantItem struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Stage     string    `json:"stage"`
	Release   string    `json:"release"`
	Image     string    `json:"image"`
	StartTime time.Time `json:"startTime"`
}

type tenantList struct {
	Tenants       []tenantItem `json:"tenants"`
	NextPageToken string       `json:"nextPageToken"`
}

// tenantView is GET /v1/tenants/{name} (workflows/tenant.Tenant, or its
// stale summary).
type tenantView struct {
	Name              string            `json:"name"`
	State             string            `json:"state"`
	Stage             string            `json:"stage"`
	Template          string            `json:"template"`
	Plan              string            `json:"plan"`
	Runtime           string            `json:"runtime"`
	Image             string            `json:"image"`
	Release           string            `json:"release"`
	URL               string            `json:"url"`
	MaintenanceWindow string            `json:"maintenanceWindow"`
	Progress          progressView      `json:"progress"`
	Error             string            `json:"error"`
	Settings          map[string]string `json:"settings"`
	Services          []struct {
		Service string `json:"service"`
		Image   string `json:"image"`
	} `json:"services"`
	Placement *struct {
		Host string `json:"host"`
	} `json:"placement"`
	Decommission   *decommissionView   `json:"decommission"`
	Suspension     *suspensionView     `json:"suspension"`
	Move           *moveView           `json:"move"`
	PlanChange     *planChangeView     `json:"planChange"`
	SettingsChange *settingsChangeView `json:"settingsChange"`
	Domains        []domainView        `json:"domains"`
	Degraded       *struct {
		Host   string `json:"host"`
		Reason string `json:"reason"`
	} `json:"degraded"`
	CreatedAt   time.Time `json:"createdAt"`
	Stale       bool      `json:"stale"`
	StaleReason string    `json:"staleReason"`
}

// decommissionView is a tenant's decommission (workflows/tenant.Decommission).
type decommissionView struct {
	Phase          string     `json:"phase"`
	RequestedBy    string     `json:"requestedBy"`
	Reason         string     `json:"reason"`
	ConfirmedBy    string     `json:"confirmedBy"`
	RetentionUntil *time.Time `json:"retentionUntil"`
	Error          string     `json:"error"`
}

// suspensionView is a tenant's suspension, under way or the last one
// (workflows/tenant.Suspension).
type suspensionView struct {
	Phase        string `json:"phase"`
	By           string `json:"by"`
	Reason       string `json:"reason"`
	ResumedBy    string `json:"resumedBy"`
	ResumeReason string `json:"resumeReason"`
	Error        string `json:"error"`
}

// suspensionAnswer is the 202 of POST /v1/tenants/{name}/suspend and
// …/resume.
type suspensionAnswer struct {
	Tenant     string         `json:"tenant"`
	Suspension suspensionView `json:"suspension"`
}

// moveView is a tenant's move between hosts (workflows/tenant.Move): POST
// /v1/tenants/{name}/move's 202, and the tenant's move.
type moveView struct {
	From  string `json:"from"`
	To    string `json:"to"`
	By    string `json:"by"`
	Phase string `json:"phase"`
	Error string `json:"error"`
}

// planChangeView is a tenant's plan change (workflows/tenant.PlanChange).
type planChangeView struct {
	From  string `json:"from"`
	To    string `json:"to"`
	By    string `json:"by"`
	Phase string `json:"phase"`
	Error string `json:"error"`
}

// settingsChangeView is a tenant's settings change
// (workflows/tenant.SettingsChange); a nil value goes back to the
// template's default.
type settingsChangeView struct {
	Settings map[string]*string `json:"settings"`
	By       string             `json:"by"`
	Phase    string             `json:"phase"`
	Error    string             `json:"error"`
}

// tenantChanges is PATCH /v1/tenants/{name}'s 202: the changes accepted.
type tenantChanges struct {
	Tenant         string              `json:"tenant"`
	PlanChange     *planChangeView     `json:"planChange"`
	SettingsChange *settingsChangeView `json:"settingsChange"`
}

// domainView is a tenant's custom domain (workflows/tenant.Domain): POST
// and DELETE /v1/tenants/{name}/domains…'s 202, and the tenant's domains.
type domainView struct {
	Host   string `json:"host"`
	Status string `json:"status"`
	Record struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"record"`
	RequestedAt time.Time `json:"requestedAt"`
	Error       string    `json:"error"`
}

// logLine is one line of GET /v1/tenants/{name}/logs (NDJSON;
// activities/runtimes.LogLine).
type logLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Stream  string    `json:"stream"`
	Line    string    `json:"line"`
}

// auditEntry is one entry of GET /v1/audit (internal/audit.Entry).
type auditEntry struct {
	At      time.Time `json:"at"`
	Role    string    `json:"role"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Tenant  string    `json:"tenant"`
	Release string    `json:"release"`
	Host    string    `json:"host"`
	Reason  string    `json:"reason"`
	Detail  string    `json:"detail"`
	Outcome string    `json:"outcome"`
	Status  int       `json:"status"`
	Error   string    `json:"error"`
}

// auditPage is GET /v1/audit: entries oldest first, and the after of the
// next page.
type auditPage struct {
	Entries []auditEntry `json:"entries"`
	Next    string       `json:"next"`
}

// tenantCreated is POST /v1/tenants's 202.
type tenantCreated struct {
	Name       string `json:"name"`
	WorkflowID string `json:"workflowId"`
	Status     string `json:"status"`
}

// decommissionAnswer is DELETE /v1/tenants/{name} and the decommission
// actions' 202.
type decommissionAnswer struct {
	Name         string           `json:"name"`
	Decommission decommissionView `json:"decommission"`
}

// credentialsView is GET /v1/tenants/{name}/credentials
// (workflows/tenant.Credentials).
type credentialsView struct {
	Username string `json:"username"`
	DN       string `json:"dn"`
	Password string `json:"password"`
	URL      string `json:"url"`
}

// releaseItem is one release of GET /v1/releases (visibility).
type releaseItem struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Image     string     `json:"image"`
	StartTime time.Time  `json:"startTime"`
	CloseTime *time.Time `json:"closeTime"`
}

type releaseList struct {
	Releases      []releaseItem `json:"releases"`
	NextPageToken string        `json:"nextPageToken"`
}

// releaseView is GET /v1/releases/{id} (workflows/release.Release; Counts
// in a summary, Tenants otherwise).
type releaseView struct {
	ID          string `json:"id"`
	Image       string `json:"image"`
	RollbackOf  string `json:"rollbackOf"`
	State       string `json:"state"`
	Phase       string `json:"phase"`
	Wave        int    `json:"wave"`
	PauseReason string `json:"pauseReason"`
	Promotion   *struct {
		By     string `json:"by"`
		Reason string `json:"reason"`
	} `json:"promotion"`
	Tenants         []releaseTenant `json:"tenants"`
	Counts          map[string]int  `json:"counts"`
	Progress        progressView    `json:"progress"`
	Failures        int             `json:"failures"`
	StagingFailed   bool            `json:"stagingFailed"`
	Error           string          `json:"error"`
	PromoteRejected string          `json:"promoteRejected"`
	StartedAt       time.Time       `json:"startedAt"`
	FinishedAt      *time.Time      `json:"finishedAt"`
	NextWindowAt    *time.Time      `json:"nextWindowAt"`
	Plan            struct {
		Tenants struct {
			All   bool     `json:"all"`
			Stage string   `json:"stage"`
			Names []string `json:"names"`
		} `json:"tenants"`
		Canary    int `json:"canary"`
		BatchSize int `json:"batchSize"`
	} `json:"plan"`
}

// releaseTenant is one tenant's part in a release (workflows/release.Tenant).
type releaseTenant struct {
	Name          string     `json:"name"`
	Stage         string     `json:"stage"`
	Wave          int        `json:"wave"`
	Status        string     `json:"status"`
	From          string     `json:"from"`
	To            string     `json:"to"`
	Error         string     `json:"error"`
	Host          string     `json:"host"`
	CutoverMillis int64      `json:"cutoverMillis"`
	WindowOpensAt *time.Time `json:"windowOpensAt"`
	Canary        bool       `json:"canary"`
}

// releaseCreated is POST /v1/releases's 202.
type releaseCreated struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Plan  struct {
		Canary            int    `json:"canary"`
		BatchSize         int    `json:"batchSize"`
		MaxParallel       int    `json:"maxParallel"`
		HealthTimeout     string `json:"healthTimeout"`
		Drain             string `json:"drain"`
		FailureThreshold  int    `json:"failureThreshold"`
		PromotionDeadline string `json:"promotionDeadline"`
	} `json:"plan"`
}

// buildCreated is POST /v1/builds's 202.
type buildCreated struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Ref     string `json:"ref"`
	SHA     string `json:"sha"`
	Status  string `json:"status"`
}

// buildAnswer is GET /v1/builds/{id}: the id and the build
// (workflows/imagebuild.Build).
type buildAnswer struct {
	ID    string    `json:"id"`
	Build buildView `json:"build"`
}

type buildView struct {
	Project string `json:"project"`
	Ref     string `json:"ref"`
	SHA     string `json:"sha"`
	State   string `json:"state"`
	Image   struct {
		Repository string   `json:"repository"`
		Ref        string   `json:"ref"`
		Digest     string   `json:"digest"`
		Tags       []string `json:"tags"`
		Built      bool     `json:"built"`
	} `json:"image"`
	Skipped    bool         `json:"skipped"`
	Progress   progressView `json:"progress"`
	Error      string       `json:"error"`
	StartedAt  time.Time    `json:"startedAt"`
	FinishedAt *time.Time   `json:"finishedAt"`
}

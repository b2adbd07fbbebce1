package tenant

import (
	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/activities/volsync"
)

// The activities the Tenant workflow calls, referenced through nil
// pointers of their structs: workflow.ExecuteActivity(ctx, rt.StartService,
// …) names the activity by its method, type-checked, and never runs it
// here (the worker registers the real structs).
var (
	rt *runtimes.Activities
	bk *backup.Activities
	px *proxy.Activities
	ld *ldap.Activities
	dn *dns.Activities
	cm *cmdb.Activities
	sv *supervision.Activities
	ig *integrations.Activities
)

// rs takes, copies, prunes and drills the tenant's restic backups.
var rs *restic.Activities

// pr prunes the off-site copies: a worker of its own (tenantflow
// offsite-pruner) on its own queue, the only one holding a credential
// that deletes off-site.
var pr *restic.Pruner

// pl reserves and releases the tenant's room on a fleet host.
var pl *placement.Activities

// vs copies the tenant's volumes from its host to a move's target: the
// source host's worker sends, the target's serves the copy.
var vs *volsync.Activities

package itopfake

import (
	"fmt"
	"strconv"
	"strings"
)

// Per-object codes of a core/delete answer (iTop's RestDelete).
const (
	delOK                = 0 // deleted as requested
	delIssue             = 1
	delAutoDelete        = 2 // deleted automatically to keep the database consistent
	delAutoDeleteIssue   = 3
	delRequestExplicitly = 4 // must be deleted explicitly (a DEL_MANUAL dependant)
	delAutoUpdate        = 5 // external key reset
	delAutoUpdateIssue   = 6
)

type planDelete struct {
	class     string
	id        int
	mode      int // delAuto or delManual
	requested bool
	issue     string
}

type planUpdate struct {
	class  string
	id     int
	attrs  []*attrDef
	issue  string
	absent bool // superseded by a deletion
}

// deletionPlan is iTop's DeletionPlan: the objects to delete (requested, or
// dependants through mandatory external keys) and those whose optional
// external key must be reset.
type deletionPlan struct {
	deletes []*planDelete
	updates []*planUpdate
}

func (p *deletionPlan) findDelete(class string, id int) *planDelete {
	for _, d := range p.deletes {
		if d.class == class && d.id == id {
			return d
		}
	}
	return nil
}

func (p *deletionPlan) addToDelete(class string, id int, mode int, requested bool) {
	for _, u := range p.updates {
		if u.class == class && u.id == id {
			u.absent = true
		}
	}
	d := p.findDelete(class, id)
	if d == nil {
		p.deletes = append(p.deletes, &planDelete{class: class, id: id, mode: mode, requested: requested})
		return
	}
	switch {
	case d.requested:
	case requested:
		d.requested, d.mode = true, delAuto
	case mode == delAuto:
		d.mode = delAuto
	}
}

func (p *deletionPlan) addToUpdate(class string, id int, a *attrDef) {
	if p.findDelete(class, id) != nil {
		return
	}
	for _, u := range p.updates {
		if u.class == class && u.id == id && !u.absent {
			u.attrs = append(u.attrs, a)
			return
		}
	}
	p.updates = append(p.updates, &planUpdate{class: class, id: id, attrs: []*attrDef{a}})
}

// makePlan is DBObject::MakeDeletionPlan: dependants through a mandatory
// external key are deleted with that key's on-delete mode, through an
// optional one they are updated.
func (s *Server) makePlan(p *deletionPlan, class string, id int, mode int, requested bool, visited map[string]bool) {
	k := class + "::" + strconv.Itoa(id)
	if visited[k] {
		p.addToDelete(class, id, mode, requested)
		return
	}
	visited[k] = true
	p.addToDelete(class, id, mode, requested)
	for _, rc := range s.classes {
		for _, a := range rc.attrs {
			if a.typ != attExtKey || a.target != class {
				continue
			}
			for _, rid := range s.ids(rc.name) {
				if s.objects[rc.name][rid][a.code] != strconv.Itoa(id) {
					continue
				}
				if a.nullable {
					p.addToUpdate(rc.name, rid, a)
				} else {
					s.makePlan(p, rc.name, rid, a.onDelete, false, visited)
				}
			}
		}
	}
}

// compute is DeletionPlan::ComputeResults; it tells whether a stopper was
// found and whether it needs manual operations.
func (p *deletionPlan) compute() (stopper, manual bool) {
	for _, d := range p.deletes {
		if d.issue != "" {
			stopper, manual = true, true
		}
		if d.mode == delManual {
			d.issue = fmt.Sprintf("%s::%d Must be deleted manually", d.class, d.id)
			stopper = true
		}
	}
	return stopper, manual
}

func (p *deletionPlan) issues() []string {
	var out []string
	for _, d := range p.deletes {
		if d.issue != "" {
			out = append(out, d.issue)
		}
	}
	for _, u := range p.updates {
		if !u.absent && u.issue != "" {
			out = append(out, u.issue)
		}
	}
	return out
}

func (s *Server) delete(version string, p map[string]any) (map[string]any, *restErr) {
	c, e := s.class(p)
	if e != nil {
		return nil, e
	}
	key, e := mandatory(p, "key")
	if e != nil {
		return nil, e
	}
	simulate := false
	if v, ok := p["simulate"]; ok {
		simulate = !phpFalsy(v)
	}
	target, ids, e := s.objectSet(c, key)
	if e != nil {
		return nil, e
	}
	plan := &deletionPlan{}
	visited := map[string]bool{}
	for _, id := range ids {
		s.makePlan(plan, target, id, delAuto, true, visited)
	}
	stopper, manual := plan.compute()
	if stopper && !simulate {
		// DBDelete throws DeleteException before anything is deleted.
		return nil, internal("Found issue(s): target_class = %s, target_id = %d, issues = %s", target, ids[0], strings.Join(plan.issues(), ", "))
	}

	objs := resultObjects{}
	idFields := []string{"id", "friendlyname"}
	count := 0
	for _, d := range plan.deletes {
		count++
		var code int
		var planned string
		switch {
		case d.issue != "" && d.mode == delAuto && d.requested:
			code, planned = delIssue, "Cannot be deleted: "+d.issue
		case d.issue != "" && d.mode == delAuto:
			code, planned = delAutoDeleteIssue, "Should be deleted automatically... but: "+d.issue
		case d.issue != "":
			code, planned = delRequestExplicitly, "Must be deleted explicitely... but: "+d.issue
		case d.mode == delAuto && d.requested:
			code, planned = delOK, ""
		case d.mode == delAuto:
			code, planned = delAutoDelete, "Deleted automatically"
		default:
			code, planned = delRequestExplicitly, "Must be deleted explicitely"
		}
		s.report(version, objs, code, planned, d.class, d.id, idFields)
	}
	for _, u := range plan.updates {
		if u.absent {
			continue
		}
		count++
		var labels []string
		for _, a := range u.attrs {
			labels = append(labels, a.label)
		}
		s.report(version, objs, delAutoUpdate, "Reset external keys: "+strings.Join(labels, ", "), u.class, u.id, idFields)
	}

	code, msg := codeOK, fmt.Sprintf("Deleted: %d", len(ids))
	switch {
	case stopper && manual:
		code, msg = codeUnsafe, "The deletion requires that other objects be deleted/updated, and those operations must be requested explicitely"
	case stopper:
		code, msg = codeInternalError, "Some issues have been encountered. See the list of planned changes for more information about the issue(s)."
	default:
		if indirect := count - len(ids); indirect > 0 {
			msg += fmt.Sprintf(" plus (for DB integrity) %d", indirect)
		}
	}
	if simulate {
		return withObjects(objs, code, "SIMULATING: "+msg), nil
	}
	for _, u := range plan.updates {
		if !u.absent {
			for _, a := range u.attrs {
				s.objects[u.class][u.id][a.code] = "0"
			}
		}
	}
	for _, d := range plan.deletes {
		delete(s.objects[d.class], d.id)
	}
	return withObjects(objs, code, msg), nil
}

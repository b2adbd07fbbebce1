package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) buildsCmd() *cobra.Command {
	return group(&cobra.Command{
		Use:     "builds",
		Aliases: []string{"build"},
		Short:   "build a GitLab commit into the registry, and follow the build",
	}, a.buildsCreate(), a.buildsGet(), a.buildsWatch())
}

func (a *app) buildsCreate() *cobra.Command {
	var project, ref string
	var watch bool
	cmd := &cobra.Command{
		Use:   "create --project GROUP/APP --ref REF",
		Short: "build a branch, tag or commit of a configured project (developer, ops)",
		Long: `Build a branch, tag or commit of a project configured for builds: the ref is
resolved in GitLab first (an unknown project or ref is refused and nothing
starts), then the commit is built and pushed to the registry. A build of a
commit already building joins it; one already in the registry is skipped.`,
		Args: args(),
	}
	cmd.Flags().StringVar(&project, "project", "", "the GitLab project, group/app (required)")
	cmd.Flags().StringVar(&ref, "ref", "", "branch, tag or commit SHA (required)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "then watch it (as builds watch)")
	_ = cmd.MarkFlagRequired("project")
	_ = cmd.MarkFlagRequired("ref")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		resp, err := c.Post(ctx, "/v1/builds", map[string]string{"project": project, "ref": ref})
		if err != nil {
			return err
		}
		var b buildCreated
		if err := resp.Decode(&b); err != nil {
			return err
		}
		switch {
		case watch:
			if a.json() {
				printf(a.io.Err, "build %s: %s\n", b.ID, b.Status)
			}
			return a.watch(ctx, a.pollBuild(c, b.ID))
		case a.json():
			return printJSON(a.io.Out, resp.Body)
		}
		printf(a.io.Out, "build %s: %s (%s %s at %.12s)\nwatch it: tenantflow builds watch %s\n", b.ID, b.Status, b.Project, b.Ref, b.SHA, b.ID)
		return nil
	})
	return cmd
}

func (a *app) buildsGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "show a build: its state, step and image (ID: group~app@<sha>[+tag])",
		Args:  args("ID"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Get(ctx, apiPath("v1", "builds", args[0]), nil)
		if err != nil {
			return err
		}
		if a.json() {
			return printJSON(a.io.Out, resp.Body)
		}
		var b buildAnswer
		if err := resp.Decode(&b); err != nil {
			return err
		}
		v := b.Build
		return fields(a.io.Out,
			[2]string{"id", args[0]}, [2]string{"project", v.Project}, [2]string{"ref", v.Ref}, [2]string{"sha", v.SHA},
			[2]string{"state", v.State}, [2]string{"progress", progressText(v.Progress)}, [2]string{"image", pinned(v)},
			[2]string{"tags", strings.Join(v.Image.Tags, ", ")}, [2]string{"skipped", skippedText(v)},
			[2]string{"error", v.Error}, [2]string{"started", when(&v.StartedAt)}, [2]string{"finished", when(v.FinishedAt)})
	})
	return cmd
}

func (a *app) buildsWatch() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "follow a build's steps until it ends (exit 0: succeeded, 6: failed)",
		Args:  args("ID"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		return a.watch(ctx, a.pollBuild(c, args[0]))
	})
	return cmd
}

// pinned is the built image by digest, what a release takes (its ref by
// tag until pushed): the registry and repository of its ref, which the
// repository alone lacks.
func pinned(b buildView) string {
	if b.Image.Digest == "" {
		return b.Image.Ref
	}
	name := b.Image.Ref
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name + "@" + b.Image.Digest
}

func skippedText(b buildView) string {
	if b.Skipped {
		return "yes: the registry held the image already"
	}
	return ""
}

// pollBuild reads the build and describes it: each step as it starts, and
// the image it pushed.
func (a *app) pollBuild(c *Client, id string) poll {
	return func(ctx context.Context) (frame, error) {
		resp, err := c.Get(ctx, apiPath("v1", "builds", id), nil)
		if err != nil {
			return frame{}, err
		}
		var b buildAnswer
		if err := resp.Decode(&b); err != nil {
			return frame{}, err
		}
		f := buildFrame(id, b.Build)
		f.raw = resp.Body
		return f, nil
	}
}

func buildFrame(id string, b buildView) frame {
	f := frame{title: fmt.Sprintf("build %s: %s", id, b.State), done: b.Progress.Done, total: b.Progress.Total, step: b.Progress.Step}
	if b.Progress.Step != "" {
		f.items = append(f.items, item{key: "step", text: fmt.Sprintf("build %s: step %s", id, progressText(b.Progress))})
	}
	switch b.State {
	case "succeeded":
		msg := fmt.Sprintf("build %s succeeded: %s", id, pinned(b))
		if b.Skipped {
			msg += " (the registry held it already)"
		}
		f.end = &ending{ok: true, msg: msg + "\nrelease it: tenantflow releases create --image " + pinned(b) + " --all"}
	case "failed":
		f.end = &ending{msg: fmt.Sprintf("build %s failed: %s", id, b.Error)}
	}
	return f
}

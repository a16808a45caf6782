package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// cdeventsSender trusts its secret path, as CDEvents are not signed,
// checks the body is a CDEvent and filters on the CloudEvents Ce-Type
// header, as Flux does.
type cdeventsSender struct{}

// cdEvent is the part of a CDEvent that is checked: the context every
// event has and the subject's id. The spec version is "specversion" from
// CDEvents 0.4 and "version" before.
type cdEvent struct {
	Context *struct {
		SpecVersion string `json:"specversion"`
		Version     string `json:"version"`
		ID          string `json:"id"`
		Source      string `json:"source"`
		Type        string `json:"type"`
		Timestamp   string `json:"timestamp"`
	} `json:"context"`
	Subject *struct {
		ID      string          `json:"id"`
		Content json.RawMessage `json:"content"`
	} `json:"subject"`
}

func (cdeventsSender) verify(_ context.Context, c *Call) (Verdict, error) {
	if err := checkCDEvent(c.Body); err != nil {
		return Verdict{}, fmt.Errorf("body is not a CDEvent: %w", err)
	}
	return filter(c.Events, c.Header.Get("Ce-Type"), "Ce-Type"), nil
}

// checkCDEvent checks the fields every CDEvent must have.
func checkCDEvent(body []byte) error {
	var event cdEvent
	if err := json.Unmarshal(body, &event); err != nil {
		return err
	}
	if event.Context == nil {
		return errors.New("no context")
	}
	ctx := event.Context
	switch {
	case ctx.SpecVersion == "" && ctx.Version == "":
		return errors.New("no context.specversion")
	case ctx.ID == "":
		return errors.New("no context.id")
	case ctx.Source == "":
		return errors.New("no context.source")
	}
	if _, err := url.Parse(ctx.Source); err != nil {
		return fmt.Errorf("context.source is not a URI reference: %w", err)
	}
	if err := checkCDEventType(ctx.Type); err != nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339Nano, ctx.Timestamp); err != nil {
		return fmt.Errorf("context.timestamp is not RFC 3339: %w", err)
	}
	if event.Subject == nil || event.Subject.ID == "" {
		return errors.New("no subject.id")
	}
	if content := bytes.TrimSpace(event.Subject.Content); len(content) > 0 && content[0] != '{' {
		return errors.New("subject.content is not an object")
	}
	return nil
}

// checkCDEventType checks "dev.cdevents.<subject>.<predicate>.<major>.<minor>.<patch>",
// the patch possibly with a pre-release ("0.4.0-draft").
func checkCDEventType(typ string) error {
	rest, ok := strings.CutPrefix(typ, "dev.cdevents.")
	parts := strings.SplitN(rest, ".", 3)
	if !ok || len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("context.type %q is not dev.cdevents.<subject>.<predicate>.<version>", typ)
	}
	version := strings.Split(parts[2], ".")
	if len(version) != 3 {
		return fmt.Errorf("context.type %q has no <major>.<minor>.<patch> version", typ)
	}
	version[2], _, _ = strings.Cut(version[2], "-")
	for _, n := range version {
		if _, err := strconv.ParseUint(n, 10, 32); err != nil {
			return fmt.Errorf("context.type %q has no <major>.<minor>.<patch> version", typ)
		}
	}
	return nil
}

package notify

// generic posts the event in Flux's event format, with the headers of the
// Secret's headers key, so that a Flux receiver of generic notifications
// reads Sluice's as they are.
type generic struct{}

func (generic) build(t target, n note) (post, error) {
	u, err := checkAddress(t.address)
	if err != nil {
		return post{}, err
	}
	p, err := jsonPost(t.typ, u.String(), n.event)
	if err != nil {
		return post{}, err
	}
	for k, v := range t.headers {
		p.header.Set(k, v)
	}
	if t.user != "" || t.password != "" {
		p.header.Set("Authorization", basicAuth(t.user, t.password))
	}
	return p, nil
}

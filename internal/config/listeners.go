package config

// Listener is one public listener: an address and the protocols it
// speaks there.
type Listener struct {
	// Name identifies the listener in logs and metrics. Required, unique,
	// same characters as route names. The short form's listener is named
	// "default".
	Name string `yaml:"name"`
	// Listen is the address, "host:port" (":8443"). Required, unique.
	Listen string `yaml:"listen"`
	// TLS, when set, makes the listener serve HTTPS (HTTP/1.1 and HTTP/2
	// by ALPN). Default: plain HTTP.
	TLS *TLS `yaml:"tls"`
	// H2C enables cleartext HTTP/2 (prior knowledge) on a plain listener.
	// Default false.
	H2C bool `yaml:"h2c"`

	// path is where the listener's keys were written: listeners[i], or the
	// top level for the short form.
	path Path
}

// Path is where the listener's keys were written: listeners[i] for the
// list form, the top level for the short form, so that
// l.Path().Key("listen") locates its address either way.
func (l *Listener) Path() Path { return l.path }

// DefaultListenerName names the listener of the short form.
const DefaultListenerName = "default"

// PublicListeners returns the public listeners: the list form as
// written, or the one listener of the short form (named "default", at
// listen, with tls and h2c).
func (c *Config) PublicListeners() []Listener {
	if len(c.Listeners) == 0 {
		return []Listener{{Name: DefaultListenerName, Listen: c.Listen, TLS: c.TLS, H2C: c.H2C}}
	}
	out := make([]Listener, len(c.Listeners))
	for i, l := range c.Listeners {
		l.path = Path{}.Index("listeners", i)
		out[i] = l
	}
	return out
}

// applyListenerDefaults fills the listeners' defaults: the short form's
// address when no list is written, and each TLS minimum version.
func (c *Config) applyListenerDefaults() {
	if len(c.Listeners) == 0 {
		setDefault(&c.Listen, DefaultListen)
	}
	if c.TLS != nil {
		setDefault(&c.TLS.MinVersion, DefaultTLSMinVersion)
	}
	for i := range c.Listeners {
		if t := c.Listeners[i].TLS; t != nil {
			setDefault(&t.MinVersion, DefaultTLSMinVersion)
		}
	}
}

func (v *validator) listeners() {
	c := v.c
	list := c.PublicListeners()
	if len(c.Listeners) > 0 && (c.Listen != "" || c.TLS != nil || c.H2C) {
		v.errf(Path{}.Key("listeners"), "cannot be combined with listen, tls or h2c: move them into a listener of the list")
	}
	names := make(map[string]bool, len(list))
	for i := range list {
		l := &list[i]
		p := l.path
		if len(c.Listeners) > 0 && v.name(p.Key("name"), l.Name) {
			if names[l.Name] {
				v.errf(p.Key("name"), "duplicate listener name %s", v.q(p.Key("name"), l.Name))
			}
			names[l.Name] = true
		}
		if !v.addr(p.Key("listen"), l.Listen) {
			continue
		}
		for j := range i {
			if sameListener(l.Listen, list[j].Listen) {
				v.errf(p.Key("listen"), "binds the same port as %s", list[j].path.Key("listen"))
			}
		}
		v.listenerTLS(l)
	}
	ap := Path{}.Key("admin").Key("listen")
	admin := c.Admin.Listen
	if admin == "off" || !v.addr(ap, admin) {
		return
	}
	for i := range list {
		if sameListener(admin, list[i].Listen) {
			v.errf(ap, "must differ from %s", list[i].path.Key("listen"))
		}
	}
}

func (v *validator) listenerTLS(l *Listener) {
	t := l.TLS
	if t == nil {
		return
	}
	p := l.path.Key("tls")
	if t.CertFile == "" {
		v.errf(p.Key("cert_file"), "is required when tls is set")
	}
	if t.KeyFile == "" {
		v.errf(p.Key("key_file"), "is required when tls is set")
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.errf(p.Key("min_version"), `must be "1.2" or "1.3"`)
	}
	if l.H2C {
		v.errf(l.path.Key("h2c"), "h2c is cleartext HTTP/2 and cannot be combined with tls (TLS listeners already speak HTTP/2)")
	}
}

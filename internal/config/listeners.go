package config

import "slices"

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
	// RedirectToHTTPS answers every request on this plain listener with
	// 308 to the same host, path and query on HTTPS, except ACME HTTP-01
	// challenges. Default false.
	RedirectToHTTPS bool `yaml:"redirect_to_https"`
	// HTTPSPort is the port the redirect names. Default: the port of the
	// first TLS listener (omitted from the URL when it is 443).
	HTTPSPort int `yaml:"https_port"`
	// MaxConnections bounds this listener's open connections, within
	// server.max_connections. Default: no bound of its own.
	MaxConnections int `yaml:"max_connections"`

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
	for i := range c.Listeners {
		c.Listeners[i].TLS.applyDefaults()
	}
	c.TLS.applyDefaults()
}

func (t *TLS) applyDefaults() {
	if t == nil {
		return
	}
	setDefault(&t.MinVersion, DefaultTLSMinVersion)
	if t.HSTS == nil {
		t.HSTS = &HSTS{MaxAge: DefaultHSTSMaxAge}
	}
	t.ACME.applyDefaults()
}

// Files returns the listener's certificates: Certificates, after the
// short form's cert_file and key_file when set.
func (t *TLS) Files() []CertificateFiles {
	if t.CertFile == "" && t.KeyFile == "" {
		return t.Certificates
	}
	return append([]CertificateFiles{{CertFile: t.CertFile, KeyFile: t.KeyFile}}, t.Certificates...)
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
		v.listenerRedirect(l, list)
		if l.MaxConnections < 0 {
			v.errf(p.Key("max_connections"), "must not be negative")
		}
	}
	v.acmeListeners(list)
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
	switch {
	case t.CertFile == "" && t.KeyFile == "" && len(t.Certificates) == 0 && t.ACME == nil:
		v.errf(p.Key("cert_file"), "is required when tls is set (or list certificates, or obtain them with acme)")
	case t.CertFile == "" && t.KeyFile != "":
		v.errf(p.Key("cert_file"), "is required with key_file")
	case t.CertFile != "" && t.KeyFile == "":
		v.errf(p.Key("key_file"), "is required with cert_file")
	}
	defaults := 0
	for i, c := range t.Certificates {
		cp := p.Index("certificates", i)
		if c.CertFile == "" {
			v.errf(cp.Key("cert_file"), "is required")
		}
		if c.KeyFile == "" {
			v.errf(cp.Key("key_file"), "is required")
		}
		if c.Default {
			if defaults++; defaults == 2 {
				v.errf(cp.Key("default"), "only one certificate can be the default")
			}
		}
	}
	if h := t.HSTS; h != nil {
		hp := p.Key("hsts")
		switch {
		case h.Preload && (!h.IncludeSubdomains || h.MaxAge < DefaultHSTSMaxAge):
			v.errf(hp.Key("preload"), "needs include_subdomains: true and a max_age of at least 8760h (the preload lists' rules)")
		case h.MaxAge == 0 && (h.IncludeSubdomains || h.Preload):
			v.errf(hp.Key("max_age"), "is 0, which turns the header off; remove include_subdomains and preload, or set a max_age")
		}
	}
	if t.ACME != nil {
		v.acme(p.Key("acme"), t.ACME)
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		v.errf(p.Key("min_version"), `must be "1.2" or "1.3"`)
	}
	v.clientAuth(p.Key("client_auth"), t.ClientAuth)
	if l.H2C {
		v.errf(l.path.Key("h2c"), "h2c is cleartext HTTP/2 and cannot be combined with tls (TLS listeners already speak HTTP/2)")
	}
}

func (v *validator) listenerRedirect(l *Listener, list []Listener) {
	p := l.path
	if !l.RedirectToHTTPS {
		if l.HTTPSPort != 0 {
			v.errf(p.Key("https_port"), "is only used with redirect_to_https: true")
		}
		return
	}
	switch {
	case l.TLS != nil:
		v.errf(p.Key("redirect_to_https"), "is for plain listeners; this one already serves HTTPS")
	case l.H2C:
		v.errf(p.Key("redirect_to_https"), "cannot be combined with h2c")
	case l.HTTPSPort < 0 || l.HTTPSPort > 65535:
		v.errf(p.Key("https_port"), "must be a port from 1 to 65535")
	case l.HTTPSPort == 0 && !slices.ContainsFunc(list, func(o Listener) bool { return o.TLS != nil }):
		v.errf(p.Key("redirect_to_https"), "needs a TLS listener to redirect to, or https_port")
	}
}

// RouteListeners checks routes[i].listeners against the listener names.
func (v *validator) routeListeners() {
	names := make(map[string]bool)
	for _, l := range v.c.PublicListeners() {
		names[l.Name] = true
	}
	for i, r := range v.c.Routes {
		for j, n := range r.Listeners {
			if !names[n] {
				v.errf(Path{}.Index("routes", i).Index("listeners", j), "unknown listener %s", v.q(Path{}.Index("routes", i).Index("listeners", j), n))
			}
		}
	}
}

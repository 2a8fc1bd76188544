package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateRateLimit(t *testing.T) {
	t.Parallel()
	sec, minute := Duration(time.Second), Duration(time.Minute)
	tests := []struct {
		name  string
		store *Store
		tiers map[string]Tier
		tier  string
		want  []string
	}{
		{name: "valid", store: &Store{Redis: &Redis{URL: "redis://:pw@127.0.0.1:6379/0"}},
			tiers: map[string]Tier{
				"free":       {RateLimit: TierLimits{Limits: []RateLimit{{Limit: 100, Window: minute}}}},
				"paid":       {RateLimit: TierLimits{Limits: []RateLimit{{Limit: 10, Window: sec, Burst: 20}, {Limit: 1000, Window: minute, Algorithm: "sliding_window"}}}},
				"enterprise": {RateLimit: TierLimits{Unlimited: true}},
			}, tier: "paid"},
		{name: "cluster", store: &Store{Redis: &Redis{Addrs: []string{"10.0.0.1:6379", "redis-2:6379"}, Password: "pw", OnError: "fail_closed", Instances: 3}}},
		{name: "store needs url or addrs", store: &Store{Redis: &Redis{}}, want: []string{
			"store.redis: one of url or addrs is required",
		}},
		{name: "store fields", store: &Store{Redis: &Redis{URL: "http://secret@h", Password: "x", Timeout: Duration(time.Minute), OnError: "ignore", Instances: -1, PoolSize: -2, KeyPrefix: "{p}"}}, want: []string{
			"store.redis.url: scheme must be redis or rediss",
			"store.redis.password: put the password in url, or use addrs",
			"store.redis.timeout: must be between 1ms and 10s",
			"store.redis.on_error: must be fail_open or fail_closed",
			"store.redis.instances: must be between 1 and 10000",
			"store.redis.pool_size: must be between 0 and 10000",
			`store.redis.key_prefix: must not contain "{", "}", spaces or line breaks`,
		}},
		{name: "url and addrs", store: &Store{Redis: &Redis{URL: "redis://h:1", Addrs: []string{"h:1"}}}, want: []string{
			"store.redis.addrs: set url or addrs, not both",
		}},
		{name: "bad addrs", store: &Store{Redis: &Redis{Addrs: []string{"h", ":6379", "h:0"}}}, want: []string{
			`store.redis.addrs[0]: must be host:port, like "10.0.0.1:6379"`,
			`store.redis.addrs[1]: must be host:port, like "10.0.0.1:6379"`,
			`store.redis.addrs[2]: must be host:port, like "10.0.0.1:6379"`,
		}},
		{name: "limits", tiers: map[string]Tier{"t": {RateLimit: TierLimits{Limits: []RateLimit{
			{Limit: 0, Window: sec},
			{Limit: 1, Window: Duration(500 * time.Millisecond)},
			{Limit: 1, Window: Duration(25 * time.Hour)},
			{Limit: 1},
			{Limit: 1, Window: sec, Burst: -1, Name: "b"},
			{Limit: 1, Window: minute, Algorithm: "leaky"},
			{Limit: 5, Window: minute, Algorithm: "fixed_window", Burst: 9, Name: "x"},
			{Limit: 5, Window: Duration(time.Hour), Name: "x"},
			{Limit: 5, Window: Duration(time.Hour), Name: "bad name"},
		}}}}, want: []string{
			"tiers.t.rate_limit.limits[0].limit: must be at least 1",
			"tiers.t.rate_limit.limits[1].window: must be between 1s and 24h",
			"tiers.t.rate_limit.limits[2].window: must be between 1s and 24h",
			`tiers.t.rate_limit.limits[3].window: is required, like "1s" or "1m"`,
			"tiers.t.rate_limit.limits[4].burst: must be at least 1",
			"tiers.t.rate_limit.limits[5].algorithm: must be one of gcra, sliding_window, fixed_window",
			"tiers.t.rate_limit.limits[6].burst: applies to the gcra algorithm only",
			`tiers.t.rate_limit.limits[7].name: duplicate limit name "x"; [6] has it too; give each limit its own name`,
			`tiers.t.rate_limit.limits[8].name: must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
		}},
		{name: "tier shape", tiers: map[string]Tier{
			"empty": {},
			"both":  {RateLimit: TierLimits{Unlimited: true, Limits: []RateLimit{{Limit: 1, Window: sec}}}},
			"a b":   {RateLimit: TierLimits{Unlimited: true}},
		}, want: []string{
			`tiers.a b: tier name must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
			"tiers.both.rate_limit.limits: must be empty when unlimited is true",
			"tiers.empty.rate_limit.limits: at least one limit is required (or unlimited: true)",
		}},
		{name: "unknown tier suggests", tiers: map[string]Tier{"premium": {RateLimit: TierLimits{Unlimited: true}}, "free": {RateLimit: TierLimits{Unlimited: true}}},
			tier: "premum", want: []string{`consumers[0].tier: unknown tier "premum"; did you mean "premium"?`}},
		{name: "unknown tier lists", tiers: map[string]Tier{"premium": {RateLimit: TierLimits{Unlimited: true}}, "free": {RateLimit: TierLimits{Unlimited: true}}},
			tier: "gold", want: []string{`consumers[0].tier: unknown tier "gold"; tier must name a key of tiers: free, premium`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Store, c.Tiers = tt.store, tt.tiers
			if tt.tier != "" {
				c.Consumers = []Consumer{{Name: "app", Tier: tt.tier}}
			}
			c.ApplyDefaults()
			var got []string
			if err := c.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	c := &Config{
		Store: &Store{Redis: &Redis{URL: "redis://h:6379"}},
		Tiers: map[string]Tier{"free": {RateLimit: TierLimits{Limits: []RateLimit{
			{Limit: 100, Window: Duration(time.Minute)},
			{Name: "burst", Limit: 10, Window: Duration(90 * time.Second), Burst: 3, Algorithm: "fixed_window"},
			{Limit: 5, Window: Duration(time.Hour + 30*time.Minute)},
		}}}},
	}
	c.ApplyDefaults()
	wantRedis := Redis{URL: "redis://h:6379", Timeout: Duration(50 * time.Millisecond), OnError: "fail_open", Instances: 1, KeyPrefix: "portico:"}
	if !reflect.DeepEqual(*c.Store.Redis, wantRedis) {
		t.Errorf("got redis %+v, want %+v", *c.Store.Redis, wantRedis)
	}
	want := []RateLimit{
		{Name: "1m", Limit: 100, Window: Duration(time.Minute), Burst: 100, Algorithm: "gcra"},
		{Name: "burst", Limit: 10, Window: Duration(90 * time.Second), Burst: 3, Algorithm: "fixed_window"},
		{Name: "1h30m", Limit: 5, Window: Duration(time.Hour + 30*time.Minute), Burst: 5, Algorithm: "gcra"},
	}
	if got := c.Tiers["free"].RateLimit.Limits; !reflect.DeepEqual(got, want) {
		t.Errorf("got limits %+v, want %+v", got, want)
	}
	for d, want := range map[time.Duration]string{time.Second: "1s", time.Minute: "1m", time.Hour: "1h", 90 * time.Second: "1m30s", 24 * time.Hour: "24h"} {
		if got := WindowName(d); got != want {
			t.Errorf("WindowName(%s): got %q, want %q", d, got, want)
		}
	}
}

package events

// TypeSiteTraffic: a gateway's count of the requests of each site's
// visitors since its previous site.traffic event: those it answered
// itself, and those visitors' workers reported answering from nodes,
// from their verified cache or through the gateway. Gateways emit one
// event (or a few, MaxTrafficSites sites each) per traffic interval when
// anything was counted; the console's history adds them up per site.
const TypeSiteTraffic Type = "site.traffic"

// MaxTrafficSites bounds the sites of one site.traffic event.
const MaxTrafficSites = 200

// SiteTraffic is the payload of site.traffic.
type SiteTraffic struct {
	Gateway string                  `json:"gateway"`
	Sites   map[string]TrafficCount `json:"sites"`
}

// TrafficCount is one site's requests in a site.traffic event.
type TrafficCount struct {
	// Gateway is the requests the gateway answered itself on the site's
	// origin (pages, files, the CAR fallback), counted by the gateway.
	Gateway uint64 `json:"gateway,omitempty"`
	// Nodes, Cache and Fallback are what visitors' workers reported
	// (POST /.verity/v1/traffic, bounded and rate-limited): requests
	// they answered from nodes (verified), from their verified cache,
	// and through the gateway. Claims of visitors' browsers: counted,
	// never billed.
	Nodes    uint64 `json:"nodes,omitempty"`
	Cache    uint64 `json:"cache,omitempty"`
	Fallback uint64 `json:"fallback,omitempty"`
	// Reports is the number of worker reports these counts came from.
	Reports uint64 `json:"reports,omitempty"`
}

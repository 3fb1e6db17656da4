package namesrv

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/tide-run/tide/mq/remoting"
)

// Route is one broker's queues for a topic.
type Route struct {
	ReadQueueNums, WriteQueueNums, Perm int
}

// Broker is what the name server needs from a registered broker.
type Broker interface {
	BrokerName() string
	ClusterName() string
	Addr() string
	// TopicRoute returns the topic's queues on this broker. It must not block on I/O: a group's %RETRY% topic that
	// does not exist yet is answered as its first use will create it.
	TopicRoute(topic string) (Route, bool)
	TopicNames() []string
}

// Server holds the registered brokers and serves name-server requests.
type Server struct {
	log     *slog.Logger
	mu      sync.RWMutex // guards brokers
	brokers []Broker
}

// New creates a name server with no brokers.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log.With("component", "mq.namesrv")}
}

// Register adds a broker.
func (s *Server) Register(b Broker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brokers = append(s.brokers, b)
}

func (s *Server) snapshot() []Broker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Broker(nil), s.brokers...)
}

// Handle is the remoting handler for the name-server port.
func (s *Server) Handle(_ *remoting.Conn, req *remoting.Command) *remoting.Command {
	switch req.Code {
	case remoting.GetRouteInfoByTopic:
		return s.route(req)
	case remoting.GetBrokerClusterInfo:
		return s.clusterInfo(req)
	case remoting.GetAllTopicListFromNameSrv:
		return s.topicList(req)
	case remoting.DeleteTopicInNameSrv:
		// Routes come from the brokers' live tables: deleting the topic in the broker is what removes it.
		return remoting.NewResponse(req, remoting.Success, "")
	}
	return remoting.Errorf(req, remoting.RequestCodeNotSupported, "request code %d not supported", req.Code)
}

func (s *Server) route(req *remoting.Command) *remoting.Command {
	f := req.ReadFields()
	topic := f.String("topic")
	if f.Err != nil {
		return remoting.Errorf(req, remoting.SystemError, "%v", f.Err)
	}
	body, ok := RouteJSON(s.snapshot(), topic)
	if !ok {
		return remoting.Errorf(req, remoting.TopicNotExist, "No topic route info in name server for the topic: %s", topic)
	}
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

// RouteJSON builds the compact route body for topic, or false when no broker has it.
func RouteJSON(brokers []Broker, topic string) ([]byte, bool) {
	var qd, bd []string
	for _, b := range brokers {
		r, ok := b.TopicRoute(topic)
		if !ok {
			continue
		}
		qd = append(qd, fmt.Sprintf(`{"brokerName":%s,"readQueueNums":%d,"writeQueueNums":%d,"perm":%d,"topicSysFlag":0}`,
			quote(b.BrokerName()), r.ReadQueueNums, r.WriteQueueNums, r.Perm))
		bd = append(bd, brokerData(b))
	}
	if len(qd) == 0 {
		return nil, false
	}
	return []byte(`{"orderTopicConf":"","queueDatas":[` + strings.Join(qd, ",") + `],"brokerDatas":[` +
		strings.Join(bd, ",") + `],"filterServerTable":{}}`), true
}

func brokerData(b Broker) string {
	return fmt.Sprintf(`{"cluster":%s,"brokerName":%s,"brokerAddrs":{"0":%s}}`, quote(b.ClusterName()), quote(b.BrokerName()), quote(b.Addr()))
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Server) clusterInfo(req *remoting.Command) *remoting.Command {
	brokers := s.snapshot()
	var addrs []string
	clusters := map[string][]string{}
	for _, b := range brokers {
		addrs = append(addrs, quote(b.BrokerName())+":"+brokerData(b))
		clusters[b.ClusterName()] = append(clusters[b.ClusterName()], b.BrokerName())
	}
	cj, _ := json.Marshal(clusters)
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = []byte(`{"brokerAddrTable":{` + strings.Join(addrs, ",") + `},"clusterAddrTable":` + string(cj) + `}`)
	return resp
}

func (s *Server) topicList(req *remoting.Command) *remoting.Command {
	set := map[string]bool{}
	for _, b := range s.snapshot() {
		for _, t := range b.TopicNames() {
			set[t] = true
		}
	}
	list := make([]string, 0, len(set))
	for t := range set {
		list = append(list, t)
	}
	sort.Strings(list)
	body, _ := json.Marshal(map[string][]string{"topicList": list})
	resp := remoting.NewResponse(req, remoting.Success, "")
	resp.Body = body
	return resp
}

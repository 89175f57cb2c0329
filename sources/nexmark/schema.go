package nexmark

import "github.com/apache/arrow-go/v18/arrow"

var (
	tsMillis = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	i64      = arrow.PrimitiveTypes.Int64
	str      = arrow.BinaryTypes.String
)

// PersonSchema, AuctionSchema and BidSchema are the schemas of the three
// tables: the fields of Beam's and Flink's Person, Auction and Bid, in their
// order, snake_cased (dateTime is date_time, emailAddress email_address, and
// so on). No column is nullable. date_time is the event time.
var (
	PersonSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: i64},
		{Name: "name", Type: str},
		{Name: "email_address", Type: str},
		{Name: "credit_card", Type: str},
		{Name: "city", Type: str},
		{Name: "state", Type: str},
		{Name: "date_time", Type: tsMillis},
		{Name: "extra", Type: str},
	}, nil)
	AuctionSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: i64},
		{Name: "item_name", Type: str},
		{Name: "description", Type: str},
		{Name: "initial_bid", Type: i64},
		{Name: "reserve", Type: i64},
		{Name: "date_time", Type: tsMillis},
		{Name: "expires", Type: tsMillis},
		{Name: "seller", Type: i64},
		{Name: "category", Type: i64},
		{Name: "extra", Type: str},
	}, nil)
	BidSchema = arrow.NewSchema([]arrow.Field{
		{Name: "auction", Type: i64},
		{Name: "bidder", Type: i64},
		{Name: "price", Type: i64},
		{Name: "channel", Type: str},
		{Name: "url", Type: str},
		{Name: "date_time", Type: tsMillis},
		{Name: "extra", Type: str},
	}, nil)
)

// EventTimeColumn is the event-time column of every table.
const EventTimeColumn = "date_time"

// Schema returns the schema of table t.
func (t Table) Schema() *arrow.Schema {
	switch t {
	case Person:
		return PersonSchema
	case Auction:
		return AuctionSchema
	default:
		return BidSchema
	}
}

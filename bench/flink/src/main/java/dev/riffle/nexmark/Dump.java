package dev.riffle.nexmark;

/**
 * Prints the events of the generator as CSV for the cross-check against
 * riffle's generator (bench/flink/gen_test.go). Needs no Flink on the class
 * path: {@code java -cp DIR dev.riffle.nexmark.Dump EVENTS [SEED]}.
 */
public final class Dump {
    private Dump() {}

    public static void main(String[] args) {
        long events = Long.parseLong(args[0]);
        long seed = args.length > 1 ? Long.parseLong(args[1]) : 1;
        dump(new Gen(seed, 10_000), events);
    }

    /**
     * Prints the number fields of the events [0, events), one
     * CSV line each (table, then the fields in schema order, strings as
     * their lengths), for comparison with riffle's generator.
     */
    static void dump(Gen g, long events) {
        StringBuilder sb = new StringBuilder(1 << 16);
        Person p = new Person();
        Auction a = new Auction();
        Bid b = new Bid();
        for (long n = 0; n < events; n++) {
            long r = n % Gen.TOTAL_PROPORTION;
            if (r < Gen.PERSON_PROPORTION) {
                g.person(n, p);
                sb.append("person,").append(p.id).append(',').append(p.name).append(',').append(p.city).append(',')
                        .append(p.state).append(',').append(p.dateTime).append(',').append(p.emailAddress.length()).append(',')
                        .append(p.creditCard.length()).append(',').append(p.extra.length()).append('\n');
            } else if (r < Gen.PERSON_PROPORTION + Gen.AUCTION_PROPORTION) {
                g.auction(n, a);
                sb.append("auction,").append(a.id).append(',').append(a.initialBid).append(',').append(a.reserve).append(',')
                        .append(a.dateTime).append(',').append(a.expires).append(',').append(a.seller).append(',')
                        .append(a.category).append(',').append(a.itemName.length()).append(',').append(a.description.length())
                        .append(',').append(a.extra.length()).append('\n');
            } else {
                g.bid(n, b);
                sb.append("bid,").append(b.auction).append(',').append(b.bidder).append(',').append(b.price).append(',')
                        .append(b.channel).append(',').append(b.dateTime).append(',').append(b.extra.length()).append(',')
                        .append(b.url.length()).append('\n');
            }
            if (sb.length() > 1 << 15) {
                System.out.print(sb);
                sb.setLength(0);
            }
        }
        System.out.print(sb);
        System.out.flush();
    }

}

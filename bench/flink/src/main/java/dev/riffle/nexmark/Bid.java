package dev.riffle.nexmark;

/** A Nexmark bid (a Flink POJO: public fields, no-argument constructor). */
public class Bid {
    public long auction;
    public long bidder;
    public long price;
    public String channel;
    public String url;
    /** Event time, Unix milliseconds. */
    public long dateTime;
    public String extra;

    public Bid() {}

    /** auction,bidder,price,dateTime: what Main --print writes. */
    @Override
    public String toString() {
        return auction + "," + bidder + "," + price + "," + dateTime;
    }
}

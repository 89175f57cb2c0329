package dev.riffle.nexmark;

/** A Nexmark person (a Flink POJO). */
public class Person {
    public long id;
    public String name;
    public String emailAddress;
    public String creditCard;
    public String city;
    public String state;
    /** Event time, Unix milliseconds. */
    public long dateTime;
    public String extra;

    public Person() {}
}

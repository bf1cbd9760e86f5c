from assistant.redaction import Redactor, redact


def test_emails_phones_and_cards_are_masked():
    text, mapping = redact("Mail bob.baker@example.org or call (415) 555-0134; card 4242 4242 4242 4242.")
    assert "example.org" not in text and "555-0134" not in text and "4242" not in text
    assert set(mapping.values()) == {"bob.baker@example.org", "(415) 555-0134", "4242 4242 4242 4242"}


def test_numbers_that_are_not_cards_or_phones_stay():
    text, _ = redact("Ship 1.2.3 in Q4 2026; order 1234567890123 failed the Luhn check; room 42.")
    assert "1234567890123" in text and "2026" in text and "42" in text


def test_foreign_names_are_masked_org_names_and_weekdays_stay():
    r = Redactor(known_names=["Alice Archer", "Bob Baker"])
    text = r.redact("Alice Archer met Grace Hopper and Dr. Linus on Friday; Bob Baker agreed.")
    assert "Alice Archer" in text and "Bob Baker" in text and "Friday" in text
    assert "Grace Hopper" not in text and "Linus" not in text
    assert r.restore(text) == "Alice Archer met Grace Hopper and Dr. Linus on Friday; Bob Baker agreed."


def test_same_value_same_placeholder():
    r = Redactor()
    a = r.redact("grace@example.com")
    b = r.redact("again grace@example.com")
    assert b.endswith(a)

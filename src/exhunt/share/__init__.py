"""The field's exchange formats: STIX 2.1 and MISP out and in, Timesketch timelines, ECS events.

Every writer reads the same gathered facts (`facts.gather`) of one or many hunt reports, so
the formats say the same thing; `iocs_in` reads indicators back from STIX bundles and MISP
events for the hunt.
"""

DROP TABLE system_events;

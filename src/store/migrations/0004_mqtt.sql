-- MQTT: an alert rule can publish its alerts to the MQTT broker (`<prefix>/<node>/alerts`).
-- The broker settings themselves live in the settings table (`mqtt`, the sealed `mqtt_password`).
ALTER TABLE alert_rules ADD COLUMN mqtt INTEGER NOT NULL DEFAULT 0;

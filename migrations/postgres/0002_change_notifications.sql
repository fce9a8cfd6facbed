-- Every node caches what reads need; these triggers tell all nodes (LISTEN kiln_changes)
-- when an order, its tracking link or an API token changes, whoever made the change.
-- Payloads end with the writer's application_name: a kiln node names its connections, so it
-- can skip the echo of its own changes (it updated its caches when it committed them).

CREATE FUNCTION kiln_notify_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kiln_changes', 'order:' || NEW.id || ':' || current_setting('application_name'));
    RETURN NULL;
END;
$$;
CREATE TRIGGER orders_notify AFTER UPDATE ON orders
FOR EACH ROW EXECUTE FUNCTION kiln_notify_order();

CREATE FUNCTION kiln_notify_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kiln_changes', 'order:' || NEW.order_id || ':' || current_setting('application_name'));
    RETURN NULL;
END;
$$;
CREATE TRIGGER tracking_links_notify AFTER INSERT OR UPDATE ON tracking_links
FOR EACH ROW EXECUTE FUNCTION kiln_notify_link();

CREATE FUNCTION kiln_notify_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kiln_changes', 'tokens:' || current_setting('application_name'));
    RETURN NULL;
END;
$$;
CREATE TRIGGER api_tokens_notify AFTER UPDATE ON api_tokens
FOR EACH ROW EXECUTE FUNCTION kiln_notify_tokens();

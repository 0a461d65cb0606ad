-- Odoo 17 base tables as the ORM leaves them after `-i base`: the columns pulser and its
-- stand-in read and write, with Odoo's own table names, column names, types and states.
-- Idempotent, so a test or a restore drill can apply it to any database.

CREATE TABLE IF NOT EXISTS res_partner (
    id serial PRIMARY KEY,
    name varchar,
    complete_name varchar,
    company_id integer,
    parent_id integer REFERENCES res_partner ON DELETE SET NULL,
    type varchar DEFAULT 'contact',
    email varchar,
    phone varchar,
    mobile varchar,
    is_company boolean DEFAULT false,
    active boolean DEFAULT true,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE IF NOT EXISTS res_users (
    id serial PRIMARY KEY,
    company_id integer,
    partner_id integer REFERENCES res_partner ON DELETE RESTRICT,
    active boolean DEFAULT true,
    login varchar(64) NOT NULL UNIQUE,
    password varchar DEFAULT NULL,
    share boolean DEFAULT false,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

CREATE TABLE IF NOT EXISTS ir_module_category (
    id serial PRIMARY KEY,
    parent_id integer REFERENCES ir_module_category ON DELETE SET NULL,
    name jsonb NOT NULL,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- state: uninstallable | uninstalled | installed | to upgrade | to remove | to install.
-- latest_version is the version installed in the database (Odoo's field names are swapped).
CREATE TABLE IF NOT EXISTS ir_module_module (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    category_id integer REFERENCES ir_module_category ON DELETE SET NULL,
    shortdesc jsonb,
    summary jsonb,
    description jsonb,
    author varchar,
    maintainer varchar,
    contributors text,
    website varchar,
    latest_version varchar,
    published_version varchar,
    url varchar,
    icon varchar,
    state varchar(16) DEFAULT 'uninstallable',
    db_version varchar,
    sequence integer DEFAULT 100,
    auto_install boolean DEFAULT false,
    demo boolean DEFAULT false,
    web boolean DEFAULT false,
    license varchar(32) DEFAULT 'LGPL-3',
    application boolean DEFAULT false,
    to_buy boolean DEFAULT false,
    menus_by_module text,
    reports_by_module text,
    views_by_module text,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT ir_module_module_name_uniq UNIQUE (name)
);
CREATE INDEX IF NOT EXISTS ir_module_module_state_index ON ir_module_module (state);

CREATE TABLE IF NOT EXISTS ir_module_module_dependency (
    id serial PRIMARY KEY,
    name varchar,
    module_id integer REFERENCES ir_module_module ON DELETE CASCADE,
    auto_install_required boolean DEFAULT true
);
CREATE INDEX IF NOT EXISTS ir_module_module_dependency_name_index ON ir_module_module_dependency (name);

CREATE TABLE IF NOT EXISTS ir_model_data (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    module varchar NOT NULL,
    model varchar NOT NULL,
    res_id integer,
    noupdate boolean DEFAULT false,
    create_uid integer,
    create_date timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC'),
    write_uid integer,
    write_date timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC'),
    CONSTRAINT ir_model_data_name_nospaces CHECK (name NOT LIKE '% %')
);
CREATE UNIQUE INDEX IF NOT EXISTS ir_model_data_module_name_uniq_index ON ir_model_data (module, name);

CREATE TABLE IF NOT EXISTS ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL,
    value text NOT NULL,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone,
    CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key)
);

-- smtp_encryption: none | starttls | ssl; smtp_authentication: login | certificate | cli.
-- Odoo picks a server by from_filter match, then sequence, among active rows only.
CREATE TABLE IF NOT EXISTS ir_mail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    from_filter varchar,
    smtp_host varchar,
    smtp_port integer DEFAULT 25,
    smtp_authentication varchar DEFAULT 'login',
    smtp_user varchar,
    smtp_pass varchar,
    smtp_encryption varchar NOT NULL DEFAULT 'none',
    smtp_ssl_certificate bytea,
    smtp_ssl_private_key bytea,
    smtp_debug boolean DEFAULT false,
    sequence integer DEFAULT 10,
    active boolean DEFAULT true,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);
CREATE INDEX IF NOT EXISTS ir_mail_server_name_index ON ir_mail_server (name);

-- ir.actions.server is stored in ir_act_server; ir.cron delegates to it (_inherits).
CREATE TABLE IF NOT EXISTS ir_act_server (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    type varchar NOT NULL DEFAULT 'ir.actions.server',
    usage varchar NOT NULL DEFAULT 'ir_actions_server',
    model_name varchar,
    state varchar NOT NULL DEFAULT 'code',
    code text,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- interval_type: minutes | hours | days | weeks | months.
CREATE TABLE IF NOT EXISTS ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL REFERENCES ir_act_server ON DELETE RESTRICT,
    cron_name varchar,
    user_id integer NOT NULL REFERENCES res_users ON DELETE RESTRICT,
    active boolean DEFAULT true,
    interval_number integer DEFAULT 1,
    interval_type varchar DEFAULT 'months',
    numbercall integer,
    doall boolean,
    nextcall timestamp without time zone NOT NULL,
    lastcall timestamp without time zone,
    priority integer DEFAULT 5,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);

-- type: url | binary. Binary content lives in the filestore at
-- <data_dir>/filestore/<db>/<store_fname>, store_fname being '<sha1[:2]>/<sha1>'.
CREATE TABLE IF NOT EXISTS ir_attachment (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    description text,
    res_model varchar,
    res_field varchar,
    res_id integer,
    company_id integer,
    type varchar NOT NULL DEFAULT 'binary',
    url varchar(1024),
    public boolean DEFAULT false,
    access_token varchar,
    db_datas bytea,
    store_fname varchar,
    file_size integer,
    checksum varchar(40),
    mimetype varchar,
    index_content text,
    original_id integer REFERENCES ir_attachment ON DELETE CASCADE,
    create_uid integer,
    create_date timestamp without time zone,
    write_uid integer,
    write_date timestamp without time zone
);
CREATE INDEX IF NOT EXISTS ir_attachment_res_idx ON ir_attachment (res_model, res_id);
CREATE INDEX IF NOT EXISTS ir_attachment_checksum_index ON ir_attachment (checksum);
CREATE INDEX IF NOT EXISTS ir_attachment_store_fname_index ON ir_attachment (store_fname);

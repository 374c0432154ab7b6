DROP TABLE logins;
DROP TABLE mail;
DROP TABLE channels;
DROP TABLE relationships;
DROP TABLE stats;
DROP TABLE users;

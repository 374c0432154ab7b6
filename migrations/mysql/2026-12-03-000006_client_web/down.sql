DROP TABLE client_reports;
DROP TABLE comments;
DROP TABLE favourites;
DROP TABLE beatmap_ratings;

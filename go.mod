module github.com/tracemark/tracemark

go 1.26
